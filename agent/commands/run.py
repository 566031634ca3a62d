"""`verity run`: watch streams until stopped (or until every file source has ended)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging

log = logging.getLogger("agent")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="watch video streams and publish deepfake alerts to Redis",
        description="Watch streams (RTSP URLs, .sdp files for RTP, media files, WebRTC "
        "publishers over WHIP) and publish alerts to Redis. Runs until stopped, or until every "
        "source has ended or failed (with service.keep_running: until stopped).",
    )
    parser.add_argument(
        "--source", action="append", metavar="URL",
        help="a stream to watch: rtsp://..., a .sdp file, a media file, whip:NAME (repeatable; "
        "adds to the config's streams)",
    )
    parser.add_argument("--redis-url", help="Redis for alerts, or `embedded` (default from config)")
    parser.add_argument("--analysis-fps", type=float, help="frames analysed per second per stream")
    add_config_args(parser)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    overrides = {}
    if args.redis_url:
        overrides["alerts"] = {"redis_url": args.redis_url}
    if args.analysis_fps:
        overrides["ingest"] = {"analysis_fps": args.analysis_fps}
    config = config_from_args(args, **overrides)
    setup_logging(config.log_level)
    if not config.streams and not (config.service.keep_running and config.service.http_port is not None):
        raise CommandError(
            "no sources: pass --source URL, list `streams` in the config file, or set "
            "service.http_port and service.keep_running to add them while running (control "
            "API, WHIP)"
        )

    from agent.alerts import RedisRefused
    from agent.app import Agent
    from engines.faces.detectors.base import DetectorUnavailable
    from engines.registry import PackError
    from engines.runtime import EngineUnavailable

    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        with Agent(config) as agent:
            result = agent.run(stop)
    except (PackError, DetectorUnavailable, EngineUnavailable, RedisRefused) as exc:
        raise CommandError(str(exc)) from None
    except RuntimeError as exc:  # e.g. the embedded Redis failed to start, the port is taken
        raise CommandError(str(exc)) from None
    stats = result.stats
    log.info(
        "done: %d frames analysed, %d faces scored (%d unknown), %d alert events published",
        stats.frames_analysed, stats.faces_scored, stats.faces_unknown, result.alerts_published,
    )
    for stream_id, error in result.failed_streams.items():
        log.error("stream %s failed: %s", stream_id, error)
    if result.alerts_unsent:
        where = (f"kept in {config.alerts.spool_path}, sent at the next start"
                 if config.alerts.spool_path else "written to the log above")
        log.error("%d alert event(s) never reached Redis: %s", result.alerts_unsent, where)
    if result.failed_streams or result.alerts_unsent:
        return 1
    return 0
