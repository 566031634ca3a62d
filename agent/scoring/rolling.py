"""Rolling score per face track, with threshold, hysteresis and minimum duration.

The per-frame probability is smoothed by an exponential moving average whose half-life is in
stream seconds (so frame-rate changes do not change its meaning). An alert is raised only
when the smoothed score has stayed at or above the threshold for `min_duration_s`, and cleared
only when it has stayed below `threshold - clear_margin` for as long: one odd frame neither
raises nor clears an alert. Frames that fail the quality gate do not move the score.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from agent.config import ScoringConfig

ROLLING_SETTINGS = ("half_life_s", "min_duration_s", "clear_margin", "min_frames")
"""The scoring settings an alert threshold's false-alarm rate depends on (with the analysis rate)."""


def rolling_settings(config: ScoringConfig, analysis_fps: float) -> dict[str, float]:
    """What `verity calibrate` records next to a threshold, to be compared at start."""
    return {name: getattr(config, name) for name in ROLLING_SETTINGS} | {"analysis_fps": analysis_fps}


def calibration_mismatch(calibrated: dict, config: ScoringConfig, analysis_fps: float) -> list[str]:
    """The settings that differ from those a threshold was calibrated with, as
    "name: calibrated -> now" (empty when they match or the card did not record them)."""
    return changed_settings(calibrated, rolling_settings(config, analysis_fps))


def changed_settings(recorded: dict, now: dict[str, float], prefix: str = "") -> list[str]:
    """"prefix+name: recorded -> now" for each recorded setting that differs from `now`'s;
    settings the record lacks (an older card) are not compared."""

    def differs(old, current) -> bool:  # a value that is not a number cannot vouch
        return not isinstance(old, (int, float)) or not math.isclose(old, current)

    return [f"{prefix}{name}: {recorded[name]} -> {now[name]}" for name in now
            if name in recorded and differs(recorded[name], now[name])]


class Verdict(str, enum.Enum):
    REAL = "real"
    FAKE = "fake"
    UNKNOWN = "unknown"


class Transition(str, enum.Enum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


@dataclass
class RollingScore:
    """Score state of one track. Feed it every analysed frame of the track, in time order."""

    config: ScoringConfig
    threshold: float
    value: float | None = None
    peak: float = 0.0
    judged_frames: int = 0
    unknown_frames: int = 0
    active: bool = False
    started_at: float | None = None
    """Stream time at which the current alert's score first crossed the threshold."""
    _above_since: float | None = None
    _below_since: float | None = None
    _last_time: float | None = None
    _last_emit: float | None = None

    @property
    def clear_level(self) -> float:
        return self.threshold - self.config.clear_margin

    @property
    def verdict(self) -> Verdict:
        if self.active:
            return Verdict.FAKE
        if self.judged_frames < self.config.min_frames or self.value is None:
            return Verdict.UNKNOWN
        return Verdict.REAL

    def update(self, time: float, probability: float | None) -> Transition | None:
        """Add one frame (probability None: the face failed the quality gate)."""
        if probability is None:
            self.unknown_frames += 1
            return None
        if self.value is None or self._last_time is None:
            self.value = float(probability)
        else:
            dt = max(time - self._last_time, 0.0)
            alpha = 1.0 - math.pow(0.5, dt / self.config.half_life_s)
            self.value += alpha * (float(probability) - self.value)
        self._last_time = time
        self.judged_frames += 1
        if self.active:
            self.peak = max(self.peak, self.value)
        return self._step(time)

    def _step(self, time: float) -> Transition | None:
        cfg = self.config
        assert self.value is not None
        if not self.active:
            if self.value >= self.threshold:
                if self._above_since is None:
                    self._above_since = time
                held = time - self._above_since
                if held >= cfg.min_duration_s and self.judged_frames >= cfg.min_frames:
                    self.active = True
                    self.started_at = self._above_since
                    self.peak = self.value
                    self._below_since = None
                    self._last_emit = time
                    return Transition.NEW
            else:
                self._above_since = None
            return None
        if self.value < self.clear_level:
            if self._below_since is None:
                self._below_since = time
            if time - self._below_since >= cfg.min_duration_s:
                self.active = False
                self._above_since = None
                return Transition.END
            return None
        self._below_since = None
        if self._last_emit is not None and time - self._last_emit >= cfg.update_every_s:
            self._last_emit = time
            return Transition.UPDATE
        return None

    def close(self) -> Transition | None:
        """The track is gone: END if an alert was active."""
        if self.active:
            self.active = False
            return Transition.END
        return None
