"""The alert document (schema `verity.alert.v1`): one JSON object per event.

An alert episode is one face track whose rolling score crossed the threshold. It is published
as `new`, then `update` every scoring.update_every_s while active, then `end`; all carry the
same alert_id and an increasing `sequence`. Delivery is at-least-once: consumers de-duplicate
on (alert_id, sequence).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "verity.alert.v1"


class FaceBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float
    frame_width: int
    frame_height: int


class Snapshot(BaseModel):
    """Where to fetch the JPEG evidence: Redis keys (expiring) and, if configured, files."""

    model_config = ConfigDict(extra="forbid")

    frame_key: str | None = Field(None, description="Redis key: the frame, face box drawn.")
    explanation_key: str | None = Field(
        None, description="Redis key: the aligned face crop with an occlusion heat map."
    )
    frame_path: str | None = None
    explanation_path: str | None = None
    expires_in_s: int | None = None


class Alert(BaseModel):
    schema_version: Literal["verity.alert.v1"] = Field(SCHEMA_VERSION, alias="schema")
    event: Literal["new", "update", "end"]
    alert_id: str = Field(description="Same for every event of one episode.")
    sequence: int = Field(ge=0, description="0 for new, then 1, 2, ... within the episode.")
    stream_id: str
    source: str = Field(description="The stream URL, credentials removed.")
    room: str | None = Field(None, description="The stream's room label (video calls).")
    participant: str | None = Field(None, description="The stream's participant label.")
    track_id: int
    verdict: Literal["fake", "unknown"]
    score: float = Field(ge=0, le=1, description="Rolling (smoothed) fake probability.")
    peak_score: float = Field(ge=0, le=1)
    threshold: float
    model_scores: dict[str, float] = Field(
        description="Latest calibrated per-frame probability of each model, by role."
    )
    models: dict[str, str] = Field(description="Model that produced each score: name@version.")
    started_at: float = Field(description="Stream time (s) the score first crossed the threshold.")
    last_seen_at: float = Field(description="Stream time (s) of the latest frame of the track.")
    ended_at: float | None = Field(None, description="Stream time (s) the episode ended.")
    end_reason: Literal["cleared", "track_lost", "stream_ended", "shutdown"] | None = None
    frames_judged: int = Field(ge=0, description="Frames of this track the models judged.")
    frames_unknown: int = Field(ge=0, description="Frames of this track the quality gate refused.")
    box: FaceBox
    snapshot: Snapshot | None = None
    emitted_at: datetime = Field(description="Wall-clock time of publication (UTC).")
    agent: str = Field(description="Agent instance that published (host:pid).")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Alert:
        return cls.model_validate_json(text)
