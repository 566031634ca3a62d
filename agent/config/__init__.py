"""Verity's configuration: a YAML file plus VERITY_ environment variables, validated strictly.

Precedence (highest first): explicit overrides (CLI flags), environment variables
(`VERITY_` prefix, `__` between nested keys, e.g. VERITY_ALERTS__REDIS_URL), the YAML file,
then defaults. Unknown keys are rejected, and every error names the key and the bad value.
"""

from __future__ import annotations

import contextvars
import difflib
import logging
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agent.config.alerts import AlertsConfig, SnapshotConfig
from agent.config.cluster import ClusterConfig
from agent.config.faces import FacesConfig, QualityConfig, TrackerConfig
from agent.config.ingest import IngestConfig, StreamConfig
from agent.config.models import ModelsConfig
from agent.config.scoring import ScoringConfig
from agent.config.service import ServiceConfig

log = logging.getLogger("agent.config")

ENV_PREFIX = "VERITY_"
OTHER_ENV_VARS = frozenset({
    # VERITY_ variables that are not settings: read by training, caches and the installer.
    "VERITY_DATA_DIR",
    "VERITY_CACHE_DIR",
    "VERITY_CLIP_CACHE_DIR",
    "VERITY_GRAPH_CACHE",
    "VERITY_VENV",
})

_yaml_data: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "verity_yaml_data", default={}
)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the value."""


class VerityConfig(BaseSettings):
    """Everything the agent needs to run."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines on stderr: plain text, or one JSON object per line (time, level, "
        "logger, message, exception). The command line's --log-format wins over this.",
    )

    @model_validator(mode="after")
    def _unique_stream_ids(self) -> VerityConfig:
        seen: dict[str, int] = {}
        for i, stream in enumerate(self.streams):
            if stream.id in seen:
                first = seen[stream.id]
                raise ValueError(
                    f"streams.{i} and streams.{first} have the same id {stream.id!r} "
                    "(an unset `id` is derived from the URL's host and path, or the file name); "
                    f"set a unique `id` on streams.{i}"
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
    warn_unknown_env_vars()
    token = _yaml_data.set(data)
    try:
        return VerityConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    except SettingsError as exc:  # an environment variable that must hold JSON does not
        raise ConfigError(_settings_error_message(exc)) from None
    finally:
        _yaml_data.reset(token)


def format_validation_error(
    exc: ValidationError, path: str | Path | None = None, *, source: str | None = None
) -> str:
    """Every error on one line naming the key, the bad value (credentials in URLs masked) and
    the environment variable that sets it. `source` names where the values came from when it
    is not a config file (e.g. "command line")."""
    where = source or (f"config file {path}" if path else "config")
    lines = [f"{where}: {exc.error_count()} invalid setting(s)"]
    for err in exc.errors():
        loc = err["loc"]
        key = ".".join(str(part) for part in loc) or "(top level)"
        message = err["msg"]
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):
            message = str(err["ctx"]["error"])  # without pydantic's "Value error, "
        hint = ""
        if err["type"] == "extra_forbidden":
            message = "unknown key (not a Verity setting; check its spelling and section)"
            hint = _unknown_key_hint(loc)
        elif loc and source is None and not any(isinstance(p, int) for p in loc):
            hint = "  [env " + env_name(loc) + "]"
        value = err.get("input")
        # A check of the whole config (loc ()) gets the whole input: its message already says
        # what is wrong, and every stream URL would follow.
        shown = "" if err["type"] == "missing" or not loc else f" (got {_short(value)})"
        lines.append(redact_secrets(f"  {key}: {message}{shown}{hint}"))
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = redact_secrets(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>,]+")


def redact_secrets(text: str) -> str:
    """Every URL inside `text` with its user:password masked (agent.redaction.redact_url)."""
    from agent.redaction import redact_url

    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def env_name(loc: tuple[str | int, ...] | list[str]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


# -- environment variables that name no setting -------------------------------------------

_warned_env: set[str] = set()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        args = typing.get_args(annotation)
        args = args[:1] if origin is typing.Annotated else args
        return [m for a in args for m in _models_in(a)]
    return []


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return origin is dict or annotation is dict


def setting_paths() -> dict[tuple[str, ...], str]:
    """Every setting's path -> "section" | "mapping" | "value" | "list" (list items: JSON only).

    The fields of a list's items (streams) are listed under the list's path, and the fields of a
    tagged union's members (faces.detector) under the union's path and under each member's tag.
    """
    paths: dict[tuple[str, ...], str] = {}

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            path = (*prefix, name)
            annotation = field.annotation
            inner = annotation
            if typing.get_origin(annotation) is list:
                inner = typing.get_args(annotation)[0]
            models = _models_in(inner)
            if typing.get_origin(annotation) is list:
                paths.setdefault(path, "list")
            elif models:
                paths.setdefault(path, "section")
            else:
                paths.setdefault(path, "mapping" if _is_mapping(annotation) else "value")
            for member in models:
                walk(member, path)
                tag = member.model_fields.get("type")
                if len(models) > 1 and tag is not None and isinstance(tag.default, str):
                    paths.setdefault((*path, tag.default), "section")
                    walk(member, (*path, tag.default))

    walk(VerityConfig, ())
    return paths


def _env_paths() -> dict[str, tuple[str, ...]]:
    """Every environment variable that sets something -> its setting path."""
    paths = setting_paths()
    names = {}
    for path in paths:
        if any(paths.get(path[:i]) == "list" for i in range(1, len(path))):
            continue  # a list (streams) is set as a whole, in JSON
        names[env_name(path)] = path
    return names


def unknown_env_vars(environ: typing.Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """VERITY_ variables that set nothing (a misspelling, a stale name), each with the nearest
    real one (or None). Nested keys under a real section are left to validation, which
    rejects them naming the key."""
    environ = os.environ if environ is None else environ
    known = _env_paths()
    kinds = setting_paths()
    found = []
    for raw in environ:
        name = raw.upper()
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_ENV_VARS:
            continue
        parts = tuple(name[len(ENV_PREFIX):].lower().split("__"))
        if any(kinds.get(parts[:i]) == "mapping" for i in range(1, len(parts))):
            continue  # a key inside a free-form mapping
        if kinds.get(parts[:1]) == "section" and len(parts) > 1:
            continue  # VERITY_INGEST__QUEUE_SIZ: validation names it (unknown key)
        candidates = [*known, *OTHER_ENV_VARS]
        match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        found.append((raw, match[0] if match else None))
    return sorted(found)


def warn_unknown_env_vars(environ: typing.Mapping[str, str] | None = None) -> None:
    """Log a warning, once per variable, for each VERITY_ variable that sets nothing."""
    for name, nearest in unknown_env_vars(environ):
        if name in _warned_env:
            continue
        _warned_env.add(name)
        advice = (f"did you mean {nearest}?" if nearest
                  else "`verity config show --schema` lists every setting")
        log.warning("environment variable %s is not a Verity setting and is ignored; %s",
                    name, advice)


def _unknown_key_hint(loc: tuple[str | int, ...]) -> str:
    """For an unknown key: the environment variable it came from, if any, and the nearest
    valid key."""
    parts = tuple(str(p) for p in loc if not isinstance(p, int))
    paths = setting_paths()
    siblings = [p[-1] for p in paths if len(p) == len(parts) and p[:-1] == parts[:-1]]
    nearest = difflib.get_close_matches(parts[-1], siblings, n=1, cutoff=0.6) if parts else []
    env = env_name(parts) if len(parts) == len(loc) else None
    from_env = env is not None and any(k.upper() == env for k in os.environ)
    if from_env:
        better = env_name((*parts[:-1], nearest[0])) if nearest else None
        return f"  [env {env}" + (f"; did you mean {better}?]" if better else "]")
    return f"  [did you mean {nearest[0]!r}?]" if nearest else ""


def _settings_error_message(exc: SettingsError) -> str:
    """pydantic-settings could not parse an environment variable (JSON expected)."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else None
    if field is None:
        return f"environment: {exc}"
    name = env_name((field,))
    value = next((v for k, v in os.environ.items() if k.upper() == name), None)
    got = f" (got {_short(value)})" if value is not None else ""
    if field == "streams":
        example = f'{name}=\'[{{"url": "rtsp://camera.local/live", "id": "door"}}]\''
    else:
        child = next((p[1] for p in setting_paths() if len(p) == 2 and p[0] == field), "key")
        example = (f"{name}='{{\"{child}\": ...}}', or one setting at a time: "
                   f"{env_name((field, child))}=...")
    return (f"environment variable {name}: not valid JSON{got}; {field} is set from the "
            f"environment as JSON, e.g. {example} (or in the config file)")


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
    "ClusterConfig",
    "VerityConfig",
    "config_as_yaml",
    "format_validation_error",
    "load_config",
    "redact_secrets",
    "unknown_env_vars",
]
