"""Rolling score per track: smoothing, threshold, hysteresis, minimum duration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScoringConfig(BaseModel):
    """When a face track's score becomes an alert, and when the alert ends."""

    model_config = ConfigDict(extra="forbid")

    half_life_s: float = Field(
        0.3,
        gt=0,
        description="Exponential moving average half-life of the per-frame fake probability, "
        "in stream seconds. Shorter than min_duration_s: a spike of one odd frame decays "
        "before it has held the score up for the minimum duration. The cards' alert "
        "thresholds were calibrated with this value: recalibrate (verity calibrate) if it "
        "changes.",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Rolling score that raises an alert; unset: the spatial model's shipped "
        "threshold from its model card.",
    )
    clear_margin: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Hysteresis: an alert clears only when the score falls below "
        "threshold - clear_margin.",
    )
    min_duration_s: float = Field(
        0.5, ge=0, description="Score must stay above threshold this long before a `new` alert."
    )
    min_frames: int = Field(3, ge=1, description="Judged frames a track needs before any verdict.")
    update_every_s: float = Field(
        5.0, gt=0, description="While an alert is active, publish an `update` this often."
    )

    @model_validator(mode="after")
    def _margin_below_threshold(self) -> ScoringConfig:
        if self.threshold is not None and self.threshold - self.clear_margin <= 0:
            raise ValueError(
                f"clear_margin ({self.clear_margin}) must be below threshold ({self.threshold})"
            )
        return self
