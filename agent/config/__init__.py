"""Verity's configuration: a YAML file plus VERITY_ environment variables, validated strictly.

Precedence (highest first): explicit overrides (CLI flags), environment variables
(`VERITY_` prefix, `__` between nested keys, e.g. VERITY_ALERTS__REDIS_URL), the YAML file,
then defaults. Unknown keys are rejected, and every error names the key and the bad value.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.config.alerts import AlertsConfig, SnapshotConfig
from agent.config.faces import FacesConfig, QualityConfig, TrackerConfig
from agent.config.ingest import IngestConfig, StreamConfig
from agent.config.models import ModelsConfig
from agent.config.scoring import ScoringConfig
from agent.config.service import ServiceConfig

_yaml_data: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "verity_yaml_data", default={}
)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the value."""


class VerityConfig(BaseSettings):
    """Everything the agent needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="VERITY_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    streams: list[StreamConfig] = Field(default_factory=list, description="Sources to watch.")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    faces: FacesConfig = Field(default_factory=FacesConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level."
    )

    @model_validator(mode="after")
    def _unique_stream_ids(self) -> VerityConfig:
        seen: dict[str, int] = {}
        for i, stream in enumerate(self.streams):
            if stream.id in seen:
                raise ValueError(
                    f"streams.{i}.id {stream.id!r} repeats streams.{seen[stream.id]}.id; "
                    "give each stream a unique `id`"
                )
            seen[stream.id] = i
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file's contents, parsed by load_config (so parse errors carry the file name)."""

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get())


def load_config(path: str | Path | None = None, **overrides: Any) -> VerityConfig:
    """Load and validate the configuration, or raise ConfigError naming what is wrong."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"config file {path}: the top level must be a mapping of sections, "
                f"got {type(data).__name__}"
            )
    token = _yaml_data.set(data)
    try:
        return VerityConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    finally:
        _yaml_data.reset(token)


def format_validation_error(exc: ValidationError, path: str | Path | None = None) -> str:
    where = f"config file {path}" if path else "config"
    lines = [f"{where}: {exc.error_count()} invalid setting(s)"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (not a Verity setting; check its spelling and section)"
        value = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {_short(value)})"
        env = ""
        if err["type"] != "extra_forbidden" and not any(isinstance(p, int) for p in err["loc"]):
            env = "  [env VERITY_" + "__".join(str(p).upper() for p in err["loc"]) + "]"
        lines.append(f"  {key}: {message}{shown}{env}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def config_as_yaml(config: VerityConfig) -> str:
    """The configuration in effect, as YAML a user can save and edit."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


__all__ = [
    "AlertsConfig",
    "ConfigError",
    "FacesConfig",
    "IngestConfig",
    "ModelsConfig",
    "QualityConfig",
    "ScoringConfig",
    "ServiceConfig",
    "SnapshotConfig",
    "StreamConfig",
    "TrackerConfig",
    "VerityConfig",
    "config_as_yaml",
    "format_validation_error",
    "load_config",
]
