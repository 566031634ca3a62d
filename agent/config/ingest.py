"""Sources and decoding: what to watch and how to keep watching it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

from agent.redaction import redact_url

_SECRET_KEY = re.compile(r"pass|secret|token|auth|key", re.IGNORECASE)

SourceKind = Literal["auto", "file", "rtsp", "sdp", "device", "whip", "whep"]


class StreamConfig(BaseModel):
    """One video source."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="rtsp://, rtsps://, a media file path, an .sdp file describing RTP "
        "(what mediasoup/Janus forward to a sidecar), a capture device (/dev/video0), or "
        "whip:<name> for a participant pushed over WebRTC to POST /whip/<stream id>, or "
        "whep+https://... to pull one from an SFU's WHEP endpoint.",
        min_length=1,
    )
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Stream id used in alerts and metrics; derived from the URL when unset.",
    )
    kind: SourceKind = Field("auto", description="Source type; auto infers it from the URL.")
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport. TCP survives lossy networks; UDP has lower latency."
    )
    realtime: bool = Field(
        False,
        description="Files only: pace decoding at the file's own frame rate, as if live "
        "(frames then drop when analysis falls behind, as for a live source).",
    )
    loop: bool = Field(False, description="Files only: start again at the end (for soak tests).")
    max_seconds: float | None = Field(
        None,
        gt=0,
        description="End the stream after this much stream time (e.g. judge only the first "
        "seconds of a file); unset: until the source ends.",
    )
    room: str | None = Field(
        None, max_length=128, description="Label: the call or room this stream belongs to "
        "(published in every alert)."
    )
    participant: str | None = Field(
        None, max_length=128, description="Label: who this stream shows (published in every alert)."
    )
    bearer_token: SecretStr | None = Field(
        None, description="WHEP sources: sent as `Authorization: Bearer <token>` to the SFU."
    )
    end_when_sender_leaves: bool = Field(
        False,
        description="WebRTC sources: end the stream when its publisher hangs up, instead of "
        "waiting for the next one (streams created by a WHIP request do).",
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Extra FFmpeg demuxer/protocol options; they override Verity's defaults "
        "(e.g. {analyzeduration: '500000'} opens RTSP faster, {buffer_size: '4194304'} "
        "for UDP at high bitrates).",
    )

    @field_serializer("url", when_used="json")
    def _hide_credentials(self, url: str) -> str:
        return redact_url(url)  # `verity config show`, API views: never the password

    @field_serializer("options", when_used="json")
    def _hide_secret_options(self, options: dict[str, str]) -> dict[str, str]:
        return {k: "***" if _SECRET_KEY.search(k) else redact_url(v) for k, v in options.items()}

    @model_validator(mode="after")
    def _resolve_kind(self) -> StreamConfig:
        if self.kind == "auto":
            self.kind = infer_kind(self.url)
        scheme = urlsplit(self.url).scheme.lower() if "://" in self.url else ""
        if scheme and scheme not in SCHEMES[self.kind]:
            raise ValueError(
                f"url: {scheme}:// is not a {self.kind} source Verity reads (rtsp://, rtsps://, "
                "whep+http(s)://, whip:NAME, an .sdp file, a device, or a local file path)"
            )
        wanted = self.options.get("protocol_whitelist")
        if wanted is not None:
            extra = set(wanted.split(",")) - PROTOCOLS.get(self.kind, set())
            if extra:
                raise ValueError(
                    f"options.protocol_whitelist: {', '.join(sorted(extra))} not allowed for a "
                    f"{self.kind} source (it may only narrow: {','.join(sorted(PROTOCOLS[self.kind]))})"
                )
        if self.id is None:
            self.id = derive_stream_id(self.url)
        return self

    @property
    def is_live(self) -> bool:
        """Live sources reconnect and drop frames; files end and, unless realtime, never drop."""
        return self.kind != "file" or self.realtime


SCHEMES: dict[str, frozenset[str]] = {
    "file": frozenset({"file"}),
    "rtsp": frozenset({"rtsp", "rtsps"}),
    "sdp": frozenset({"file"}),
    "device": frozenset({"v4l2"}),
    "whip": frozenset(),
    "whep": frozenset({"whep+http", "whep+https"}),
}
"""URL schemes (`scheme://...`) each source kind accepts: an `http://` URL is not a file."""

PROTOCOLS: dict[str, frozenset[str]] = {
    "file": frozenset({"file"}),
    "rtsp": frozenset({"rtsp", "rtsps", "tcp", "udp", "rtp", "tls", "srtp", "crypto", "httpproxy"}),
    "sdp": frozenset({"file", "udp", "rtp", "srtp", "crypto"}),
    "device": frozenset({"file"}),
}
"""FFmpeg protocols each PyAV source kind may use (its `protocol_whitelist`)."""


def infer_kind(url: str) -> SourceKind:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if url.lower().endswith(".sdp"):
        return "sdp"
    if url.startswith("/dev/video") or scheme in ("v4l2",):
        return "device"
    if scheme == "whip":
        return "whip"
    if scheme in ("whep+http", "whep+https"):
        return "whep"
    return "file"


def derive_stream_id(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("rtsp", "rtsps", "whep+http", "whep+https"):
        base = f"{parts.hostname or 'rtsp'}{parts.path}"
    else:
        base = Path(parts.path or url).stem or "stream"
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", base).strip("-")[:64] or "stream"


class IngestConfig(BaseModel):
    """Decoding, frame-rate cap, queues, watchdog and reconnection for every stream."""

    model_config = ConfigDict(extra="forbid")

    analysis_fps: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Frame-rate cap: at most this many frames per second per stream are "
        "converted and analysed; the rest are decoded (needed for inter-frame codecs) and skipped.",
    )
    queue_size: int = Field(
        4,
        ge=1,
        le=1024,
        description="Frames buffered per stream. A live stream that outruns analysis drops "
        "the oldest frame (counted in metrics) instead of falling behind.",
    )
    watchdog_s: float = Field(
        10.0,
        gt=0,
        description="Live sources: no decoded frame for this long (silent socket, or packets "
        "that decode to nothing) -> close and reconnect.",
    )
    open_timeout_s: float = Field(
        10.0, gt=0, description="Give up opening a source (connect and probe) after this."
    )
    reconnect_initial_s: float = Field(1.0, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Reconnect delay cap (doubling).")
    connect_attempts: int = Field(
        3,
        ge=0,
        description="A source that has never delivered a frame is declared failed after this "
        "many attempts (a wrong URL should fail fast; 0: retry forever).",
    )
    reconnect_attempts: int | None = Field(
        None,
        ge=0,
        description="A source that was working and dropped: give up after this many failed "
        "reconnects in a row (unset: never give up).",
    )
    hwaccel: Literal["none", "cuda", "auto"] = Field(
        "none",
        description="Hardware decoding. cuda/auto try NVDEC and fall back to software decoding, "
        "with a warning, where no GPU is usable.",
    )
    max_frame_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Largest picture accepted, in pixels (width x height; 40 M holds 8K video "
        "and large photos): a stream or image beyond it is refused before decoding, so a "
        "header claiming 65535x65535 cannot exhaust memory.",
    )
    decode_threads: int = Field(
        0, ge=0, le=64,
        description="FFmpeg decoder threads per stream. 0 (auto): one per stream once the agent "
        "watches at least as many streams as there are cores (frame threads then only add "
        "work), FFmpeg's frame threads otherwise.",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> IngestConfig:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s:g}) must be at least "
                f"reconnect_initial_s ({self.reconnect_initial_s:g})"
            )
        return self
