"""Helpers shared by subcommands: config loading with CLI overrides, logging, errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent import logs
from agent.config import ConfigError, StreamConfig, VerityConfig, load_config


class CommandError(Exception):
    """A failure to report to the user as one clear message (exit status `code`)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file (see configs/agent.yaml)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def config_from_args(args: argparse.Namespace, **overrides: Any) -> VerityConfig:
    """The config file + environment, with CLI flags on top. --source adds streams."""
    fps = getattr(args, "analysis_fps", None)
    if fps is not None:
        if not fps > 0:  # 0 is falsy: without this check it would be silently ignored
            raise CommandError(f"--analysis-fps must be greater than 0 (got {fps:g})")
        ingest = overrides.get("ingest")
        overrides["ingest"] = {"analysis_fps": fps, **(ingest if isinstance(ingest, dict) else {})}
    try:
        base = load_config(getattr(args, "config", None))
        logs.set_format(base.log_format)  # the command line's --log-format still wins
        sources = getattr(args, "source", None) or []
        if sources:
            streams = [s.model_dump() for s in base.streams]
            streams += [StreamConfig(url=url).model_dump() for url in sources]
            overrides["streams"] = _unique_ids(streams)
        if getattr(args, "log_level", None):
            overrides["log_level"] = args.log_level
        if not overrides:
            return base
        merged = base.model_dump()
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return VerityConfig.model_validate(merged)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:  # pydantic ValidationError from the merged overrides
        from pydantic import ValidationError

        from agent.config import format_validation_error

        if isinstance(exc, ValidationError):
            raise CommandError(format_validation_error(exc, source="command line")) from None
        raise


def _unique_ids(streams: list[dict]) -> list[dict]:
    seen: dict[str, int] = {}
    for stream in streams:
        base = stream["id"]
        if base in seen:
            seen[base] += 1
            stream["id"] = f"{base}-{seen[base]}"
        else:
            seen[base] = 0
    return streams


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr at `level`, as text or JSON (--log-format, config `log_format`)."""
    logs.setup_logging(level)
