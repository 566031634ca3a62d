"""The `verity` command: one subcommand module per job (agent/commands/)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from agent import __version__, logs
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
    soak,
    train,
)
from agent.commands.common import CommandError

SUBCOMMANDS = [
    run, score, demo, alerts_cmd, config_cmd, eval_cmd, calibrate, train, bench, soak, engines_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verity",
        description="Verity: real-time deepfake monitoring. Watches live video, judges every face, "
        "publishes alerts to Redis.",
        epilog="--log-format and -v also work after the command (verity score -v x.mp4). "
        "Exit status: 0 on success, 2 for a usage, configuration or input error, 130 when "
        "interrupted; other codes per command (see its --help).",
    )
    parser.add_argument("--version", action="version", version=f"verity {__version__}")
    _add_global_options(parser, default=None)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    for sub in _nested_parsers(subparsers):
        if not sub.get_default("passes_unknown_args"):  # `verity train` hands its args on
            _add_global_options(sub, default=argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--log-format", choices=logs.LOG_FORMATS, default=default,
        help="log lines on stderr: text (default) or json, one object per line with time, "
        "level, logger, message and exception (also config `log_format`, env "
        "VERITY_LOG_FORMAT)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=False if default is None else default,
        help="also show the native log lines of the face detector's libraries (MediaPipe, "
        "TensorFlow Lite, absl), hidden by default",
    )


def _nested_parsers(subparsers) -> list[argparse.ArgumentParser]:
    found = []
    for sub in dict.fromkeys(subparsers.choices.values()):  # aliases appear once
        found.append(sub)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += _nested_parsers(action)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown_args = unknown
    _setup_output(args)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        try:
            status = int(args.handler(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return status
        except CommandError as exc:
            logs.user_error(f"verity {args.command}", str(exc))
            return exc.code
        except KeyboardInterrupt:
            return 130
    except BrokenPipeError:
        # `verity score ... | head -1`: the reader is gone; stop as quietly as a Unix tool does.
        _discard_stdout()
        return 128 + signal.SIGPIPE


def _setup_output(args: argparse.Namespace) -> None:
    """Log format and level before any command runs, so that every line on stderr (config
    warnings included) has the chosen format; native library logs hidden unless -v."""
    explicit = getattr(args, "log_format", None)
    from_env = os.environ.get("VERITY_LOG_FORMAT", "").strip().lower()
    logs.set_format(explicit or (from_env if from_env in logs.LOG_FORMATS else None),
                    explicit=explicit is not None)
    logs.setup_logging("WARNING")
    if getattr(args, "verbose", False):
        from engines.faces.native_logs import show_native_logs

        show_native_logs(True)


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
