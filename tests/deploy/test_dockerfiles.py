"""The Dockerfiles, read statically (no Docker engine here): pinned bases, non-root user,
health check on the configured port, the `verity run` command, installs that match
deploy/setup.sh and pyproject.toml, and build contexts that contain what they copy."""

from __future__ import annotations

import fnmatch
import re

import pytest

from agent.cli import build_parser
from agent.config import load_config
from tests.deploy.common import (
    CONFIG_EXAMPLE,
    CONTAINER_UID,
    DOCKERFILES,
    REPO,
    RUN_ARGV,
    parse_dockerfile,
    pyproject,
    setup_sh_pins,
)

KINDS = sorted(DOCKERFILES)


@pytest.fixture(params=KINDS)
def dockerfile(request):
    return parse_dockerfile(DOCKERFILES[request.param])


def test_base_images_are_pinned(dockerfile):
    for image in dockerfile.base_images():
        assert "${" not in image, f"unresolved ARG in {image}"
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{dockerfile.path.name}: unpinned base {image}"
        assert re.search(r"\d", tag), f"{image}: the tag names no version"


def test_expected_bases():
    bases = {kind: parse_dockerfile(path).base_images() for kind, path in DOCKERFILES.items()}
    assert bases["cpu"][0].startswith("python:3.11") and "slim" in bases["cpu"][0]
    assert bases["cuda"][0].startswith("nvcr.io/nvidia/tensorrt:")
    assert all(b.startswith("nvcr.io/nvidia/l4t-") for b in bases["jetson"])


def test_runs_as_non_root(dockerfile):
    final = dockerfile.final_stage()
    users = [i.args for i in final if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage must switch to a user"
    run = "\n".join(i.args for i in final if i.keyword == "RUN")
    assert f"--uid {CONTAINER_UID}" in run and "useradd" in run


def test_runs_verity_with_the_mounted_config(dockerfile):
    final = dockerfile.final_stage()
    entrypoint = [i for i in final if i.keyword == "ENTRYPOINT"][-1].exec_form()
    cmd = [i for i in final if i.keyword == "CMD"][-1].exec_form()
    assert entrypoint == ["verity"] and cmd == RUN_ARGV
    build_parser().parse_args(cmd)


def test_healthcheck_hits_healthz_on_the_configured_port(dockerfile):
    (health,) = [i for i in dockerfile.final_stage() if i.keyword == "HEALTHCHECK"]
    text = health.args
    assert "/healthz" in text and "--start-period=" in text
    port = re.search(r"VERITY_SERVICE__HTTP_PORT', '(\d+)'", text)
    assert port, "the health check should follow VERITY_SERVICE__HTTP_PORT"
    assert int(port.group(1)) == load_config(CONFIG_EXAMPLE).service.http_port
    exposed = [i.args for i in dockerfile.final_stage() if i.keyword == "EXPOSE"]
    assert exposed == [port.group(1)]


def test_installs_like_setup_sh(dockerfile):
    run = dockerfile.run_text()
    pins = setup_sh_pins()
    assert set(pins) == {"mediapipe", "insightface"}
    (no_deps,) = re.findall(r"pip install --no-deps ([^&]+)", run)
    installed = dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9_.]*)", no_deps))
    assert installed["insightface"] == pins["insightface"]
    if dockerfile.path.name.endswith("jetson"):
        # No aarch64 wheel of the x86 version exists; see the Dockerfile's note.
        assert installed["mediapipe"] == "0.10.18"
    else:
        assert installed["mediapipe"] == pins["mediapipe"]
    # --no-deps first: the package install must find mediapipe/insightface already there.
    assert run.index("--no-deps") < run.index('".[')


def test_extras_exist_in_pyproject(dockerfile):
    extras = set(pyproject()["project"]["optional-dependencies"])
    (spec,) = re.findall(r'"\.\[([a-z,]+)\]"', dockerfile.run_text())
    wanted = set(spec.split(","))
    assert wanted <= extras, f"unknown extras {wanted - extras}"
    assert {"mediapipe", "insightface"} <= wanted
    if not dockerfile.path.name.endswith("cpu"):
        assert "gpu" in wanted


def test_gpu_images_keep_engines_where_the_config_says(dockerfile):
    if dockerfile.path.name.endswith("cpu"):
        pytest.skip("no engines on the CPU image")
    cache = load_config(CONFIG_EXAMPLE).models.engine_cache_dir
    final = dockerfile.final_stage()
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert f"VERITY_MODELS__ENGINE_CACHE_DIR={cache}" in env
    volumes = " ".join(i.args for i in final if i.keyword == "VOLUME")
    assert f'"{cache}"' in volumes
    # cuda-python must stay on CUDA 12 with these CUDA 12 bases.
    assert "cuda-python>=12.6,<13" in dockerfile.run_text()


def test_jetson_has_no_torch_at_run_time():
    run = parse_dockerfile(DOCKERFILES["jetson"]).run_text()
    assert "'torch' not in sys.modules" in run
    assert "torch" not in re.sub(r"'torch' not in sys.modules", "", run)


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules, enough for these files: last match wins, ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_copied_sources_exist_and_are_not_ignored(dockerfile):
    ignore_file = dockerfile.path.with_name(dockerfile.path.name + ".dockerignore")
    assert ignore_file.is_file(), "BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile"
    patterns = [
        line.strip()
        for line in ignore_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for ins in dockerfile.all("COPY"):
        if ins.args.startswith("--from="):
            continue
        *sources, _dest = ins.args.split()
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.path.name}: COPY {source}: missing"
            assert not _ignored(source, patterns), f"{source} is excluded by {ignore_file.name}"
    for heavy in (".venv", ".git", "tests", "engines/__pycache__"):
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the builder"
