"""Score state per face track, and the events it produces (new / update / end)."""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agent.config import ScoringConfig
from agent.scoring.rolling import RollingScore, Transition, Verdict

EndReason = Literal["cleared", "track_lost", "stream_ended", "shutdown"]


@dataclass
class TrackState:
    stream_id: str
    track_id: int
    rolling: RollingScore
    first_seen: float
    last_seen: float
    box: np.ndarray
    frame_size: tuple[int, int]
    model_scores: dict[str, float] = field(default_factory=dict)
    probability_sum: float = 0.0
    role_sums: dict[str, float] = field(default_factory=dict)
    role_counts: dict[str, int] = field(default_factory=dict)
    max_rolling: float = 0.0
    ever_fake: bool = False
    alert_id: str | None = None
    sequence: int = 0
    alert_started_at: float | None = None
    first_alert_at: float | None = None
    """Stream time of the track's first alert (None: it never alerted)."""

    @property
    def mean_probability(self) -> float | None:
        n = self.rolling.judged_frames
        return self.probability_sum / n if n else None

    @property
    def mean_by_role(self) -> dict[str, float]:
        """Mean calibrated probability of each model over the frames it judged."""
        return {role: self.role_sums[role] / self.role_counts[role] for role in self.role_sums}

    @property
    def verdict(self) -> Verdict:
        return self.rolling.verdict


@dataclass
class TrackEvent:
    transition: Transition
    state: TrackState
    time: float
    end_reason: EndReason | None = None
    observation: object | None = None
    """The FaceObservation that caused it (None when a track ends without a frame)."""


class TrackBook:
    """All track states of one stream."""

    def __init__(
        self, stream_id: str, config: ScoringConfig, threshold: float,
        keep_finished: int | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.config = config
        self.threshold = threshold
        self.states: dict[int, TrackState] = {}
        self.finished: collections.deque[TrackState] = collections.deque(maxlen=keep_finished)
        """Ended tracks, the most recent `keep_finished` (None: all, for reports on files)."""

    def rolling_value(self, track_id: int) -> float | None:
        state = self.states.get(track_id)
        return state.rolling.value if state is not None else None

    def update(
        self,
        track_id: int,
        time: float,
        box: np.ndarray,
        frame_size: tuple[int, int],
        probabilities: dict[str, float] | None,
        fused: float | None,
        observation: object,
    ) -> TrackEvent | None:
        state = self.states.get(track_id)
        if state is None:
            state = TrackState(
                self.stream_id,
                track_id,
                RollingScore(self.config, self.threshold),
                first_seen=time,
                last_seen=time,
                box=box,
                frame_size=frame_size,
            )
            self.states[track_id] = state
        state.last_seen, state.box, state.frame_size = time, box, frame_size
        if probabilities is not None:
            state.model_scores = probabilities
            state.probability_sum += float(fused)
            for role, p in probabilities.items():
                state.role_sums[role] = state.role_sums.get(role, 0.0) + p
                state.role_counts[role] = state.role_counts.get(role, 0) + 1
        transition = state.rolling.update(time, fused)
        if state.rolling.value is not None:
            state.max_rolling = max(state.max_rolling, state.rolling.value)
        if transition is None:
            return None
        if transition is Transition.NEW:
            state.alert_id = uuid.uuid4().hex
            state.sequence = 0
            state.ever_fake = True
            state.alert_started_at = state.rolling.started_at
            if state.first_alert_at is None:
                state.first_alert_at = time
        else:
            state.sequence += 1
        reason: EndReason | None = "cleared" if transition is Transition.END else None
        return TrackEvent(transition, state, time, reason, observation)

    def end(self, track_id: int, reason: EndReason) -> TrackEvent | None:
        state = self.states.pop(track_id, None)
        if state is None:
            return None
        self.finished.append(state)
        if state.rolling.close() is Transition.END:
            state.sequence += 1
            return TrackEvent(Transition.END, state, state.last_seen, reason)
        return None

