"""`verity alerts tail`: follow the alert stream through a Redis consumer group."""

from __future__ import annotations

import argparse
import os
import socket

import redis

from agent.alerts.tail import format_alert_line, tail_alerts
from agent.commands.common import CommandError, add_config_args, config_from_args
from agent.redaction import redact_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("alerts", help="read alerts from Redis")
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    tail = sub.add_parser(
        "tail",
        help="print alerts as they arrive (consumer group: resumes where it left off)",
    )
    tail.add_argument("--redis-url", help="Redis to read from (default from config)")
    tail.add_argument("--group", default="verity-tail", help="consumer group (default verity-tail)")
    tail.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}", help="consumer name")
    tail.add_argument("--from-start", action="store_true", help="a new group starts at the oldest alert")
    tail.add_argument("--count", type=int, help="exit after this many alerts")
    tail.add_argument("--timeout", type=float, help="exit after this many seconds without alerts")
    tail.add_argument("--json", action="store_true", help="print each alert as one JSON line")
    add_config_args(tail)
    tail.set_defaults(handler=tail_command)


def tail_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    url = args.redis_url or config.alerts.redis_url
    if url == "embedded":
        raise CommandError("alerts tail needs the URL of a running Redis, not `embedded`")
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CommandError(f"Redis at {redact_url(url)} is unreachable: {exc}", code=1) from None
    import time

    seen = 0
    last = time.monotonic()

    def stop() -> bool:
        return args.timeout is not None and time.monotonic() - last > args.timeout

    try:
        for _entry_id, alert in tail_alerts(
            client, config.alerts.stream_key, args.group, args.consumer,
            from_start=args.from_start, block_ms=500, stop=stop,
        ):
            print(alert.to_json() if args.json else format_alert_line(alert), flush=True)
            seen += 1
            last = time.monotonic()
            if args.count is not None and seen >= args.count:
                break
    except KeyboardInterrupt:
        pass
    except redis.RedisError as exc:
        raise CommandError(f"lost Redis at {redact_url(url)}: {exc}", code=1) from None
    return 0
