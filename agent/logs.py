"""Logging for the `verity` command: plain text (the default) or one JSON object per line.

`verity --log-format json ...` (or `log_format: json` in the config, or VERITY_LOG_FORMAT=json)
writes every log record to stderr as one JSON object per line:

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "agent", "message": "..."}

plus "exception" (the formatted traceback) when the record carries one. The command's own error
messages (what `verity score` reports about a bad file, a bad configuration) go through the same
path, so in JSON mode every stderr line parses as JSON. Python warnings are routed through
logging too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_format: LogFormat = "text"
_format_explicit = False  # set from the command line: the config cannot change it


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _SwitchingFormatter(logging.Formatter):
    """Formats with whatever format is in effect when the record is written, so that the
    config file's `log_format` (known only once the config is loaded) still applies to a
    handler installed before it."""

    def __init__(self) -> None:
        super().__init__()
        self._text = logging.Formatter(TEXT_FORMAT)
        self._json = JsonFormatter()

    def format(self, record: logging.LogRecord) -> str:
        return (self._json if _format == "json" else self._text).format(record)


def set_format(fmt: str | None, *, explicit: bool = False) -> None:
    """Choose text or JSON. An explicit choice (the command-line flag) wins over later,
    non-explicit ones (environment, config file)."""
    global _format, _format_explicit
    if fmt is None or (_format_explicit and not explicit):
        return
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    _format = fmt  # type: ignore[assignment]
    _format_explicit = _format_explicit or explicit
    logging.captureWarnings(_format == "json")


def current_format() -> LogFormat:
    return _format


def setup_logging(level: str = "INFO", fmt: str | None = None) -> None:
    """(Re)install the one stderr handler at `level`, in the format in effect."""
    set_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SwitchingFormatter())
    logging.basicConfig(level=getattr(logging, level), handlers=[handler], force=True)


def user_error(prefix: str, message: str) -> None:
    """A message for the person at the terminal (`verity score: x.mp4: no frame decoded`):
    printed as is in text mode, one JSON record (level ERROR) in JSON mode."""
    if _format == "json":
        record = logging.LogRecord("verity", logging.ERROR, __file__, 0, f"{prefix}: {message}",
                                   None, None)
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
    else:
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

