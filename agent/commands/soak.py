"""`verity soak`: run N looping streams for a long while and watch the agent's resources."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "soak",
        help="run N looping streams for a while; print RSS, threads, open files as it goes",
        description="Runs the agent on N looping realtime copies of the demo clip (a face that "
        "turns fake each loop) with an embedded Redis, samples RSS, threads and open files "
        "every --interval seconds (one line each on stderr), and prints a JSON summary with "
        "the growth from the first sample after --warmup to the last.",
    )
    parser.add_argument("--streams", type=int, default=4, help="concurrent streams (default 4)")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before the baseline sample (default 60)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    add_config_args(parser)
    parser.set_defaults(handler=soak_command)


def soak_command(args: argparse.Namespace) -> int:
    if args.streams < 1 or args.minutes <= 0 or args.interval <= 0 or args.warmup < 0:
        raise CommandError("--streams must be >= 1, --minutes and --interval > 0, --warmup >= 0")
    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from agent.soak import run_soak

    def show(s) -> None:
        print(f"{s.elapsed_s:8.0f} s  rss {s.rss_mb:7.1f} MB  threads {s.threads:3d}  "
              f"open files {s.open_files:3d}  frames {s.frames_analysed:7d}  "
              f"alert events {s.alert_events:5d}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="verity-soak-") as workdir:
        report = run_soak(config, Path(workdir), streams=args.streams, minutes=args.minutes,
                          interval_s=args.interval, warmup_s=args.warmup, report=show)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0
