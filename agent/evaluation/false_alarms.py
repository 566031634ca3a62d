"""Alert threshold at a target false-alarm rate, measured with the agent's own rolling scorer.

1. Every real clip runs through the agent's pipeline (detector, tracker, alignment, quality
   gate, model); each face track's per-frame calibrated probabilities are kept, with their
   stream times (NaN where the quality gate refused the face).
2. A threshold's false-alarm rate is the number of `new` alerts that `RollingScore` (the
   product's own class, with the configured smoothing, hysteresis and minimum duration)
   raises on those real tracks, per hour of real stream.
3. A handful of real clips is minutes of footage, and the target (by default 1 false alert
   per 10 stream-hours) is a rare event. So the rate is also estimated on long synthetic
   streams made by concatenating randomly drawn blocks of the real tracks (a block
   bootstrap): each block keeps a real track's own score dynamics; what it cannot show is
   behaviour absent from the clips (new cameras, lighting, people). Say so with the number.
   A bootstrap cannot go beyond the highest score it was given, so the tail is also
   extrapolated: the maxima of the rolling score (in logit units) over 10 s windows of real
   tracks are fitted with a generalised extreme-value distribution (extreme-value theory), and the threshold
   whose exceedance rate per hour of windows equals the target is read off the fit.
4. The chosen threshold is the larger of (a) the smallest threshold with an estimated rate at
   or below the target on both the observed clips and the bootstrap (bisection: the rate
   falls as the threshold rises) and (b) the extreme-value threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from agent.config import ScoringConfig, StreamConfig, VerityConfig
from agent.evaluation.manifest import EvalItem
from agent.pipeline import FaceScorer, Pipeline
from agent.scoring.rolling import RollingScore, Transition


@dataclass
class TrackSeries:
    """One face track of one clip: stream times and calibrated probabilities (NaN: refused)."""

    source: str
    track_id: int
    times: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0


@dataclass
class ClipSeries:
    source: str
    label: str
    duration_s: float
    tracks: list[TrackSeries]


def record_clip(item: EvalItem, config: VerityConfig, detector, scorer: FaceScorer,
                max_seconds: float | None = None) -> ClipSeries:
    """Run one clip through the agent's pipeline and keep every track's score series."""
    tracks: dict[int, TrackSeries] = {}
    first_last: list[float] = []

    def collect(observations, scores) -> None:
        for obs, score in zip(observations, scores):
            series = tracks.setdefault(obs.track.id, TrackSeries(item.rel, obs.track.id))
            series.times.append(obs.frame.time)
            series.probabilities.append(score.fused if score is not None else float("nan"))
            first_last.append(obs.frame.time)

    stream = StreamConfig(url=str(item.path), kind="file", id="calibrate", max_seconds=max_seconds)
    pipeline = Pipeline(
        config.model_copy(update={"streams": [stream]}),
        detector=detector, scorer=scorer, on_observations=collect,
    )
    try:
        pipeline.run()
    finally:
        pipeline.close()
    if pipeline.failed_streams:
        raise ValueError(pipeline.failed_streams["calibrate"])
    duration = (max(first_last) - min(first_last) + 1.0 / config.ingest.analysis_fps) if first_last else 0.0
    return ClipSeries(item.rel, item.label, duration, list(tracks.values()))


def count_alerts(tracks: Iterable[TrackSeries], scoring: ScoringConfig, threshold: float) -> int:
    """`new` alerts the product's RollingScore raises on these tracks at this threshold."""
    alerts = 0
    for track in tracks:
        score = RollingScore(scoring, threshold)
        for t, p in zip(track.times, track.probabilities):
            if score.update(t, None if math.isnan(p) else p) is Transition.NEW:
                alerts += 1
    return alerts


def first_alert_times(tracks: Iterable[TrackSeries], scoring: ScoringConfig, threshold: float) -> list[float]:
    """Per track, the stream time of its first `new` alert (tracks that never alert: none)."""
    times = []
    for track in tracks:
        score = RollingScore(scoring, threshold)
        for t, p in zip(track.times, track.probabilities):
            if score.update(t, None if math.isnan(p) else p) is Transition.NEW:
                times.append(t)
                break
    return times


def bootstrap_tracks(tracks: list[TrackSeries], hours: float, block_s: float, seed: int) -> list[TrackSeries]:
    """Long synthetic real streams: random blocks of the real tracks laid end to end.

    Each synthetic stream is one continuous track of about an hour, so the rolling score's
    state carries across block boundaries as it would in a long call.
    """
    rng = np.random.default_rng(seed)
    usable = [t for t in tracks if t.duration >= block_s]
    if not usable:
        usable = [t for t in tracks if len(t.times) > 1]
    if not usable:
        return []
    weights = np.array([t.duration for t in usable], np.float64)
    weights /= weights.sum()
    streams: list[TrackSeries] = []
    remaining = hours * 3600.0
    while remaining > 0:
        stream = TrackSeries("bootstrap", len(streams) + 1)
        clock = 0.0
        while clock < min(3600.0, remaining):
            track = usable[int(rng.choice(len(usable), p=weights))]
            times = np.asarray(track.times)
            start = float(rng.uniform(times[0], max(times[0], times[-1] - block_s)))
            keep = (times >= start) & (times < start + block_s)
            block_times = times[keep] - start
            if len(block_times) == 0:
                continue
            stream.times.extend((block_times + clock).tolist())
            stream.probabilities.extend(np.asarray(track.probabilities)[keep].tolist())
            clock += block_s
        remaining -= clock
        streams.append(stream)
    return streams


def rolling_values(track: TrackSeries, scoring: ScoringConfig) -> np.ndarray:
    """The rolling score after every judged frame (RollingScore's own smoothing)."""
    score = RollingScore(scoring, threshold=0.999999)  # the threshold does not move the value
    values = []
    for t, p in zip(track.times, track.probabilities):
        if not math.isnan(p):
            score.update(t, p)
            values.append(score.value)
    return np.asarray(values, np.float64)


def extreme_value_threshold(
    tracks: list[TrackSeries], scoring: ScoringConfig, target_per_hour: float, window_s: float = 10.0
) -> dict:
    """GEV fit to per-window maxima of logit(rolling score); threshold at the target rate."""
    from scipy import stats

    maxima = []
    for track in tracks:
        values = rolling_values(track, scoring)
        times = np.asarray([t for t, p in zip(track.times, track.probabilities) if not math.isnan(p)])
        if len(values) == 0:
            continue
        window = np.floor((times - times[0]) / window_s).astype(int)
        for w in np.unique(window):
            v = np.clip(values[window == w].max(), 1e-6, 1 - 1e-6)
            maxima.append(math.log(v / (1 - v)))
    if len(maxima) < 10:
        return {"windows": len(maxima), "threshold": None, "note": "too few windows to fit"}
    # GEV rather than Gumbel: real score maxima can have a heavier tail (a hard real face).
    shape, loc, scale = stats.genextreme.fit(maxima)
    exceed = min(target_per_hour * window_s / 3600.0, 0.5)
    logit = float(stats.genextreme.isf(exceed, shape, loc, scale))
    return {
        "windows": len(maxima),
        "window_s": window_s,
        "gev_shape": round(float(shape), 4),
        "gev_loc": round(float(loc), 4),
        "gev_scale": round(float(scale), 4),
        "max_observed": round(1 / (1 + math.exp(-max(maxima))), 4),
        "threshold": 1 / (1 + math.exp(-logit)),
    }


@dataclass
class ThresholdChoice:
    threshold: float
    target_per_hour: float
    observed_hours: float
    observed_alerts: int
    bootstrap_hours: float
    bootstrap_alerts: int
    bootstrap_threshold: float
    extreme_value: dict
    curve: list[dict]


def choose_threshold(
    real_tracks: list[TrackSeries],
    observed_hours: float,
    scoring: ScoringConfig,
    target_per_hour: float = 0.1,
    bootstrap_hours: float = 100.0,
    block_s: float = 5.0,
    seed: int = 0,
    low: float = 0.5,
    high: float = 0.995,
    steps: int = 12,
    progress: Callable[[str], None] = lambda _msg: None,
) -> ThresholdChoice:
    """Smallest threshold in [low, high] meeting the target on the clips and the bootstrap."""
    synthetic = bootstrap_tracks(real_tracks, bootstrap_hours, block_s, seed)
    synthetic_hours = sum(t.duration for t in synthetic) / 3600.0
    curve: list[dict] = []

    def rates(threshold: float) -> dict:
        observed = count_alerts(real_tracks, scoring, threshold)
        simulated = count_alerts(synthetic, scoring, threshold)
        row = {
            "threshold": round(threshold, 4),
            "observed_alerts": observed,
            "observed_per_hour": observed / observed_hours if observed_hours else math.inf,
            "bootstrap_alerts": simulated,
            "bootstrap_per_hour": simulated / synthetic_hours if synthetic_hours else math.inf,
        }
        curve.append(row)
        progress(f"threshold {threshold:.4f}: {observed} alert(s) on the clips, "
                 f"{simulated} in {synthetic_hours:.0f} bootstrap hours")
        return row

    def meets(row: dict) -> bool:
        return row["observed_per_hour"] <= target_per_hour and row["bootstrap_per_hour"] <= target_per_hour

    if meets(rates(low)):
        best = low
    elif not meets(top := rates(high)):
        best = high  # nothing in range meets the target: report it, the caller decides
        curve.append({**top, "note": "target not met anywhere in range"})
    else:
        lo, hi = low, high
        for _ in range(steps):
            mid = (lo + hi) / 2
            if meets(rates(mid)):
                hi = mid
            else:
                lo = mid
        best = hi
    bootstrap_best = best
    extreme = extreme_value_threshold(real_tracks, scoring, target_per_hour)
    if extreme["threshold"] is not None and extreme["threshold"] > best:
        best = min(float(extreme["threshold"]), high)
        progress(f"extreme-value fit raises it to {best:.4f}")
        rates(best)
    final = next(r for r in reversed(curve) if r["threshold"] == round(best, 4))
    return ThresholdChoice(
        threshold=best,
        bootstrap_threshold=bootstrap_best,
        extreme_value=extreme,
        target_per_hour=target_per_hour,
        observed_hours=observed_hours,
        observed_alerts=final["observed_alerts"],
        bootstrap_hours=synthetic_hours,
        bootstrap_alerts=final["bootstrap_alerts"],
        curve=sorted(curve, key=lambda r: r["threshold"]),
    )
