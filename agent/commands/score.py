"""`verity score PATH...`: judge image or video files, per face track and overall."""

from __future__ import annotations

import argparse
import logging
import os
import stat
from pathlib import Path

from agent import logs
from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging

# Exit status with --exit-code (without it: 0, or ERROR when a file could not be scored).
REAL, FAKE, ERROR, UNKNOWN = 0, 1, 2, 3

EPILOG = """\
exit status:
  0  every file was scored
  2  a file could not be scored (each one is reported on stderr; the others are still scored),
     or a usage or configuration error
with --exit-code, the verdict decides:
  0  every file is real
  1  a file is fake (whatever the other files are)
  2  no file is fake, and a file could not be scored
  3  no file is fake, none failed, and a file is unknown (no face that could be judged)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="judge an image or video file: real | fake | unknown per face and overall",
        description="Judge image or video files: real | fake | unknown per face track and "
        "overall, through the same detector, quality gate and models as `verity run`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, nargs="+", help="image or video file(s)")
    parser.add_argument("--json", action="store_true", help="print one JSON report per file")
    parser.add_argument(
        "--exit-code", action="store_true",
        help="exit with the verdict: 0 real, 1 fake, 3 unknown (2: a file could not be scored)",
    )
    add_config_args(parser)
    parser.set_defaults(handler=score_command)


class FileProblem(Exception):
    """This file cannot be scored; the message is the cause, without the path."""


def score_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    if not args.log_level:
        # A file's failure is reported once, by this command: not also by the reader.
        for name in ("agent.ingest", "agent.pipeline"):
            logging.getLogger(name).addFilter(_drop_stream_failures)
    from agent.pipeline import FaceScorer
    from engines.faces import create_detector
    from engines.faces.detectors.base import DetectorUnavailable
    from engines.registry import PackError

    try:
        scorer = FaceScorer(config.models)
        detector = create_detector(config.faces.detector)
    except (PackError, DetectorUnavailable) as exc:
        raise CommandError(str(exc)) from None
    verdicts: list[str] = []
    failed = 0
    for path in args.path:
        try:
            report = _score_one(path, config, detector, scorer)
        except FileProblem as exc:
            failed += 1
            logs.user_error("verity score", f"{path}: {exc}")
            continue
        verdicts.append(report.verdict)
        if args.json:
            print(report.model_dump_json(), flush=True)
        else:
            _print_report(report)
    if failed and len(args.path) > 1:
        logs.user_error("verity score", f"{failed} of {len(args.path)} files could not be scored")
    if args.exit_code:
        if "fake" in verdicts:
            return FAKE
        if failed:
            return ERROR
        return UNKNOWN if "unknown" in verdicts else REAL
    return ERROR if failed else 0


def _score_one(path: Path, config, detector, scorer):
    from agent.scoring.report import is_image, score_image, score_video

    _check_file(path)
    try:  # a file source is always opened as a local path (`file:x.mp4` is a file here)
        if is_image(path):
            report = score_image(path, config, detector, scorer)
        else:
            report = score_video(path, config, detector, scorer)
    except Exception as exc:  # one bad file must not stop the others
        logging.getLogger("agent").debug("scoring %s failed", path, exc_info=True)
        raise FileProblem(_cause(exc, str(path))) from None
    if report.frames_analysed == 0:
        raise FileProblem("no frame decoded (damaged, truncated or empty video)")
    return report


def _check_file(path: Path) -> None:
    """What the path is, when it is not a readable regular file, named plainly."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileProblem("broken symbolic link (its target does not exist)") from None
        raise FileProblem("no such file") from None
    except PermissionError:
        raise FileProblem("permission denied") from None
    except OSError as exc:
        raise FileProblem((exc.strerror or str(exc)).lower()) from None
    if stat.S_ISDIR(info.st_mode):
        raise FileProblem("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a character device" if stat.S_ISCHR(info.st_mode)
                else "a block device" if stat.S_ISBLK(info.st_mode)
                else "a socket" if stat.S_ISSOCK(info.st_mode) else "special")
        raise FileProblem(f"not a regular file ({kind})")
    if not os.access(path, os.R_OK):
        raise FileProblem("permission denied")
    if info.st_size == 0:
        raise FileProblem("empty file (0 bytes): no frame decoded")


# Causes that describe a network source, said of a local file.
_FILE_CAUSES = {
    "input/output error (host unreachable or name not resolved?)":
        "input/output error (truncated or damaged file?)",
}


def _cause(exc: Exception, where: str) -> str:
    text = str(exc)
    text = text.removeprefix(f"{where}: ")  # the reader names the file; the caller does too
    if isinstance(exc, UnicodeDecodeError) or "UnicodeDecodeError" in text:
        # PyAV decodes the container's metadata as UTF-8: garbage there means a damaged header
        return "damaged header (unreadable metadata)"
    if (type(exc).__module__ == "builtins" and type(exc) not in (ValueError, RuntimeError)
            and not text.startswith(type(exc).__name__)):
        text = f"{type(exc).__name__}: {text}"  # e.g. "KeyError: 'x'": a bug, said as one
    return _FILE_CAUSES.get(text, text)


def _drop_stream_failures(record: logging.LogRecord) -> bool:
    """False for the reader's and pipeline's "stream score ...: <cause>" errors."""
    return not (record.levelno >= logging.ERROR and not record.exc_info
                and record.getMessage().startswith("stream score"))


def _print_report(report) -> None:
    print(f"{report.path}: {report.verdict.upper()} ({report.kind}, "
          f"{report.frames_analysed} frame(s) analysed, threshold {report.threshold:.2f})")
    for t in report.tracks:
        mean = "-" if t.mean_probability is None else f"{t.mean_probability:.2f}"
        peak = "-" if t.max_rolling_score is None else f"{t.max_rolling_score:.2f}"
        why = ", ".join(f"{k} x{v}" for k, v in t.unknown_reasons.items())
        print(f"  face track {t.track_id}: {t.verdict:7} mean p(fake) {mean}, peak rolling "
              f"{peak}, {t.frames_judged} judged, {t.frames_unknown} unknown"
              + (f" ({why})" if why else ""))
    if not report.tracks:
        print("  no face found")
    print(end="", flush=True)
