"""`verity bench`: throughput, lag and alert latency for N concurrent 720p30 streams."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from agent.commands.common import add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the agent on N concurrent 720p30 clips (prints JSON)",
        description="Runs the agent on N copies of a synthetic 720p30 clip paced like live "
        "cameras, then as fast as possible, plus two references on the same input: "
        "decode-only and a naive every-frame pipeline. Prints one JSON document.",
    )
    parser.add_argument("--streams", type=int, default=8, help="concurrent copies (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--naive-frames", type=int, default=300, help="frames for the naive reference")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    add_config_args(parser)
    parser.set_defaults(handler=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    import sys

    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from agent.bench import run_bench

    with tempfile.TemporaryDirectory(prefix="verity-bench-") as workdir:
        report = run_bench(
            config, Path(workdir), copies=args.streams, seconds=args.seconds, width=args.width,
            height=args.height, fps=args.fps, naive_frames=args.naive_frames,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0
