"""`verity demo`: run the agent end to end on a synthetic clip with an embedded Redis."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="end-to-end demo: synthetic clip -> agent -> embedded Redis -> alerts read back",
        description="Builds a short SYNTHETIC clip from a face photo shipped in scikit-image "
        "(real at first, then self-blended), starts an embedded Redis, runs the agent on it, reads "
        "the alerts back and exits 0 only if the manipulated part raised an alert and the real "
        "part did not.",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the clip and alert snapshots here")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic manipulation")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_config_args(parser)
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from agent.demo.run import keep_or_temp, print_outcome, run_demo
    from engines.faces.detectors.base import DetectorUnavailable
    from engines.registry import PackError

    if not args.json:
        print("Verity demo: building a synthetic clip, starting an embedded Redis, running the agent...")
    with keep_or_temp(args.keep) as workdir:
        try:
            outcome = run_demo(config, Path(workdir), seed=args.seed)
        except (PackError, DetectorUnavailable, RuntimeError) as exc:
            raise CommandError(str(exc), code=1) from None
        print_outcome(outcome, args.json)
    return 0 if outcome.passed else 1
