"""`verity score PATH`: judge an image or a video file, per face track and overall."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="judge an image or video file: real | fake | unknown per face and overall"
    )
    parser.add_argument("path", type=Path, nargs="+", help="image or video file(s)")
    parser.add_argument("--json", action="store_true", help="print one JSON report per file")
    add_config_args(parser)
    parser.set_defaults(handler=score_command)


def score_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from agent.pipeline import FaceScorer
    from agent.scoring.report import is_image, score_image, score_video
    from engines.faces import create_detector
    from engines.faces.detectors.base import DetectorUnavailable
    from engines.registry import PackError

    try:
        scorer = FaceScorer(config.models)
        detector = create_detector(config.faces.detector)
    except (PackError, DetectorUnavailable) as exc:
        raise CommandError(str(exc)) from None
    status = 0
    for path in args.path:
        if not path.is_file():
            raise CommandError(f"{path}: no such file", code=1)
        try:
            if is_image(path):
                report = score_image(path, config, detector, scorer)
            else:
                report = score_video(path, config, detector, scorer)
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}", code=1) from None
        if args.json:
            print(report.model_dump_json())
        else:
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
    return status
