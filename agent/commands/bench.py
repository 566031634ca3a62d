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
    parser.add_argument("--streams", type=_counts, default=[8],
                        help="concurrent copies (default 8); a list such as 1,4,8,16,24,32 "
                        "sweeps: the live run at each count, and a table on stderr")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--naive-frames", type=int, default=300, help="frames for the naive reference")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    add_config_args(parser)
    parser.set_defaults(handler=bench_command)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a number of streams, or a list like 1,4,8") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("stream counts must be >= 1")
    return counts


def bench_command(args: argparse.Namespace) -> int:
    import sys

    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from agent.bench import run_bench

    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="verity-bench-") as workdir:
        if len(args.streams) == 1:
            report = run_bench(
                config, Path(workdir), copies=args.streams[0], seconds=args.seconds,
                width=args.width, height=args.height, fps=args.fps,
                naive_frames=args.naive_frames, progress=progress,
            )
        else:
            from agent.bench import run_sweep, sweep_table

            report = run_sweep(config, Path(workdir), counts=args.streams, seconds=args.seconds,
                               width=args.width, height=args.height, fps=args.fps,
                               progress=progress)
            print(sweep_table(report), file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0
