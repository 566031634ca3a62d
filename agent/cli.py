"""The `verity` command: one subcommand module per job (agent/commands/)."""

from __future__ import annotations

import argparse
import sys

from agent import __version__
from agent.commands import (
    alerts_cmd,
    bench,
    calibrate,
    config_cmd,
    demo,
    engines_cmd,
    eval_cmd,
    run,
    score,
    train,
)
from agent.commands.common import CommandError

SUBCOMMANDS = [
    run, score, demo, alerts_cmd, config_cmd, eval_cmd, calibrate, train, bench, engines_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verity",
        description="Verity: real-time deepfake monitoring. Watches live video, judges every face, "
        "publishes alerts to Redis.",
    )
    parser.add_argument("--version", action="version", version=f"verity {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown_args = unknown
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CommandError as exc:
        print(f"verity {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
