"""`verity train spatial ...`: reproduce a model from its config (needs the `train` extra).

Every option after the model name goes to the trainer (`verity train spatial --help`).
"""

from __future__ import annotations

import argparse
import importlib

from agent.commands.common import CommandError, setup_logging

TRAINERS = {
    "spatial": "engines.train.spatial",
    "temporal": "engines.train.temporal",
    "deep": "engines.train.deep",
}

# Packages of the `train` extra (pyproject.toml); the agent itself runs without them.
TRAIN_EXTRA = ("torch", "torchvision", "onnxconverter_common", "sklearn")
INSTALL_HINT = ("install the `train` extra: deploy/setup.sh --train "
                "(or pip install -e '.[train]')")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a config (needs torch: deploy/setup.sh --train)",
        description="Train a model from a config. Every option after MODEL goes to its trainer: "
        "`verity train MODEL --help` lists them. Needs the `train` extra (torch): "
        "deploy/setup.sh --train.",
        add_help=False,  # --help after MODEL is the trainer's
    )
    parser.add_argument("model", nargs="?", choices=sorted(TRAINERS), metavar="MODEL",
                        help=f"which model to train: {', '.join(sorted(TRAINERS))}")
    parser.add_argument("-h", "--help", action="store_true", dest="train_help",
                        help="show this help (`verity train MODEL --help`: the trainer's options)")
    parser.set_defaults(handler=train_command, passes_unknown_args=True, train_parser=parser)


def train_command(args: argparse.Namespace) -> int:
    if args.model is None:
        if args.train_help:
            args.train_parser.print_help()
            return 0
        raise CommandError(f"which model? one of: {', '.join(sorted(TRAINERS))} "
                           "(verity train --help)")
    trainer_args = list(args.unknown_args) + (["--help"] if args.train_help else [])
    # A trainer's progress lines are its output; the CLI's WARNING default would hide them
    # (and the trainers' own basicConfig is a no-op once a handler is installed).
    setup_logging("INFO")
    try:
        module = importlib.import_module(TRAINERS[args.model])
        if not args.train_help:
            importlib.import_module("torch")  # fail here, not half-way into a run
        return int(module.main(trainer_args) or 0)
    except ImportError as exc:
        missing = _missing_package(exc)
        if missing is None:
            raise CommandError(f"cannot start the {args.model} trainer: {exc}") from None
        raise CommandError(f"training needs {missing}, which is not installed: {INSTALL_HINT}",
                           code=2) from None


def _missing_package(exc: ImportError) -> str | None:
    """The `train` extra's package an ImportError is about, or None (another problem)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name in TRAIN_EXTRA:
        return name
    text = str(exc)
    return next((p for p in TRAIN_EXTRA if f"'{p}'" in text or f" {p} " in text), None)
