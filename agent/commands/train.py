"""`verity train spatial ...`: reproduce a model from its config (needs the `train` extra).

Every option after the model name goes to the trainer (`verity train spatial --help`).
"""

from __future__ import annotations

import argparse
import importlib

from agent.commands.common import CommandError

TRAINERS = {
    "spatial": "engines.train.spatial",
    "temporal": "engines.train.temporal",
    "deep": "engines.train.deep",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a config (needs torch: deploy/setup.sh --train)",
        add_help=False,
    )
    parser.add_argument("model", choices=sorted(TRAINERS), help="which model to train")
    parser.set_defaults(handler=train_command, passes_unknown_args=True)


def train_command(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(TRAINERS[args.model])
    except ImportError as exc:
        raise CommandError(
            f"training needs the `train` extra (torch 2.13): deploy/setup.sh --train ({exc})"
        ) from None
    return int(module.main(list(args.unknown_args)) or 0)
