"""`verity score` on damaged and odd inputs: every file scored or reported once, by name, with
the right words, and the exit status says so. The corpus is made here, never committed."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

import cv2
import pytest

from tests.agent.commands.cli_runner import NATIVE_NOISE, verity
from tests.support.media import write_test_clip

TITLE = "VERITYTITLE"


def _boxes(data: bytes) -> dict[bytes, bytes]:
    """Top-level MP4 boxes by type."""
    boxes, i = {}, 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        boxes[kind] = data[i : i + size]
        i += size
    return boxes


def _damaged_header(folder: Path) -> Path:
    """An mkv whose title tag is not UTF-8 (bytes replaced in place: the layout stays valid)."""
    import av

    path = folder / "tagged.mkv"
    with av.open(str(path), "w") as out:
        out.metadata["title"] = TITLE
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        import numpy as np

        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), "rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = path.read_bytes()
    assert data.count(TITLE.encode()) == 1
    damaged = folder / "header.mkv"
    damaged.write_bytes(data.replace(TITLE.encode(), b"\xff\xfe\xfd" * (len(TITLE) // 3)
                                     + b"\xff" * (len(TITLE) % 3)))
    path.unlink()
    return damaged


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("score-inputs")
    good = write_test_clip(folder / "good.mp4", seconds=1.0, fps=10, width=160, height=120)
    data = good.read_bytes()
    (folder / "moov-only.mp4").write_bytes(_boxes(data)[b"moov"])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "folder.mp4").mkdir()
    os.mkfifo(folder / "pipe.mp4")
    (folder / "zero-link.mp4").symlink_to("/dev/zero")
    _damaged_header(folder)
    mkv = write_test_clip(folder / "whole.mkv", seconds=1.0, fps=10, width=160, height=120)
    (folder / "truncated.mkv").write_bytes(mkv.read_bytes()[:300])
    shutil.copy(good, folder / "colon:name.mp4")
    shutil.copy(good, folder / "file:x.mp4")
    return folder


BAD = {
    "moov-only.mp4": "no frame decoded",
    "empty.mp4": "no frame decoded",
    "folder.mp4": "is a directory",
    "pipe.mp4": "not a regular file",
    "zero-link.mp4": "not a regular file",
    "header.mkv": "damaged header",
    "truncated.mkv": "",
    "missing.mp4": "no such file",
}
GOOD = ["good.mp4", "colon:name.mp4", "file:x.mp4"]


@pytest.fixture(scope="module")
def scored(corpus):
    """One run over good and bad files mixed: the bad ones must not stop the rest."""
    names = ["good.mp4", *list(BAD)[:4], "colon:name.mp4", *list(BAD)[4:], "file:x.mp4"]
    return verity("score", *names, cwd=corpus)


def test_every_file_is_scored_and_the_run_fails_at_the_end(scored):
    assert scored.returncode == 2, scored.stderr
    for name in GOOD:  # the good ones, including those after bad ones, were all scored
        assert re.search(rf"^{re.escape(name)}: UNKNOWN \(video, 10 frame", scored.stdout,
                         re.MULTILINE), (
            scored.stdout)
    assert f"{len(BAD)} of {len(BAD) + len(GOOD)} files could not be scored" in scored.stderr


@pytest.mark.parametrize("name", list(BAD))
def test_each_bad_file_is_reported_once_with_its_cause(scored, name):
    lines = [line for line in scored.stderr.splitlines() if name in line]
    assert len(lines) == 1, scored.stderr  # one line: not also the reader's and the pipeline's
    assert lines[0].startswith(f"verity score: {name}: "), lines
    assert lines[0].count(name) == 1, lines  # the path is not repeated
    assert BAD[name] in lines[0]


def test_no_traceback_python_error_or_network_guess_for_local_files(scored):
    assert "Traceback" not in scored.stderr
    assert "UnicodeDecodeError" not in scored.stderr
    assert "host unreachable" not in scored.stderr
    assert "no such file" not in scored.stderr.replace("verity score: missing.mp4: no such file", "")


def test_files_named_like_urls_are_opened_as_local_files(scored):
    assert "unsupported format or protocol" not in scored.stderr
    assert "file:x.mp4: UNKNOWN" in scored.stdout and "colon:name.mp4: UNKNOWN" in scored.stdout


def test_no_native_library_noise_on_stderr(scored):
    for marker in NATIVE_NOISE:
        assert marker not in scored.stderr


def test_verbose_shows_the_native_library_lines(corpus):
    result = verity("score", "-v", "good.mp4", cwd=corpus)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" in result.stderr  # the noise exists; only -v lets it through


# -- --exit-code ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_photo(tmp_path_factory) -> Path:
    from agent.demo.clip import astronaut_bgr

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), astronaut_bgr(640, 480))
    return path


# The real photo's face scores about 0.5: judged fake at a threshold of 0.1.
LOW_THRESHOLD = {"VERITY_SCORING__THRESHOLD": "0.1", "VERITY_SCORING__CLEAR_MARGIN": "0.05"}


def test_exit_code_real(face_photo):
    # A threshold of 0.99: the real photo's face scores far below it.
    result = verity("score", "--exit-code", "--json", face_photo,
                    env={"VERITY_SCORING__THRESHOLD": "0.99"})
    assert json.loads(result.stdout)["verdict"] == "real"
    assert result.returncode == 0, result.stderr


def test_exit_code_fake_wins_over_unknown(face_photo, corpus):
    result = verity("score", "--exit-code", face_photo, corpus / "good.mp4", env=LOW_THRESHOLD)
    assert "FAKE" in result.stdout and "UNKNOWN" in result.stdout
    assert result.returncode == 1, result.stderr


def test_exit_code_unknown_and_plain_success(face_photo, corpus):
    result = verity("score", "--exit-code", face_photo, corpus / "good.mp4",
                    env={"VERITY_SCORING__THRESHOLD": "0.99"})
    assert "REAL" in result.stdout and "UNKNOWN" in result.stdout
    assert result.returncode == 3, result.stderr
    # Without --exit-code, scoring every file is success whatever the verdicts.
    result = verity("score", face_photo, corpus / "good.mp4", env=LOW_THRESHOLD)
    assert "FAKE" in result.stdout and result.returncode == 0, result.stderr


def test_exit_code_error_when_a_file_fails_and_none_is_fake(corpus):
    result = verity("score", "--exit-code", "good.mp4", "empty.mp4", cwd=corpus)
    assert result.returncode == 2 and "UNKNOWN" in result.stdout


def test_help_documents_the_exit_codes():
    result = verity("score", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--exit-code" in text
    for line in ("0 every file is real", "1 a file is fake", "3 no file is fake"):
        assert line in text, text


def test_broken_pipe_ends_quietly(corpus):
    import subprocess
    import sys

    from tests.agent.commands.cli_runner import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$@" | head -1', "_", sys.executable, "-m", "agent.cli",
         "score", "good.mp4", "good.mp4", "good.mp4"],
        capture_output=True, text=True, timeout=120, cwd=corpus, env=env, check=False,
    )
    assert result.stdout.startswith("good.mp4: UNKNOWN")
    assert result.returncode == 141  # as a Unix tool ended by SIGPIPE
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.stderr == ""
