"""Readers for the deploy files: YAML documents, Dockerfiles, systemd units, setup.sh pins.

Nothing here builds or runs a container: these tests check statically that the deploy files
parse and agree with the agent (its config loader, its CLI, its ports and paths).
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER = DEPLOY / "docker"
CONFIG_EXAMPLE = DEPLOY / "config.example.yaml"
DOCKERFILES = {kind: DOCKER / f"Dockerfile.{kind}" for kind in ("cpu", "cuda", "jetson")}
RUN_ARGV = ["run", "--config", "/etc/verity/config.yaml"]
CONTAINER_UID = 10001


def load_yaml(path: Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def load_yaml_docs(path: Path) -> list[dict]:
    with open(path) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def setup_sh_pins() -> dict[str, str]:
    """name -> version of the `pip install --no-deps name==version` pins in deploy/setup.sh."""
    text = (DEPLOY / "setup.sh").read_text()
    line = next(line for line in text.splitlines() if "--no-deps" in line and "==" in line)
    return dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9_.]*)", line))


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's argv, or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            return json.loads(text)
        return None


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def stages(self) -> list[list[Instruction]]:
        stages: list[list[Instruction]] = []
        for ins in self.instructions:
            if ins.keyword == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(ins)
        return stages

    def final_stage(self) -> list[Instruction]:
        return self.stages()[-1]

    def arg_defaults(self) -> dict[str, str]:
        defaults = {}
        for ins in self.all("ARG"):
            if "=" in ins.args:
                name, value = ins.args.split("=", 1)
                defaults[name.strip()] = value.strip()
        return defaults

    def base_images(self) -> list[str]:
        """FROM images with ${ARG} defaults substituted (stage aliases excluded)."""
        defaults = self.arg_defaults()
        images = []
        for ins in self.all("FROM"):
            image = ins.args.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), image)
            images.append(image)
        return images

    def run_text(self) -> str:
        return "\n".join(i.args for i in self.all("RUN"))


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with line continuations joined and comment lines dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    return Dockerfile(path, instructions)


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, empty_lines_in_values=False
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def split_command(text: str) -> list[str]:
    return shlex.split(text)
