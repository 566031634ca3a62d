"""`verity score` results: per face track a verdict with its scores, and an overall verdict."""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from agent.config import StreamConfig, VerityConfig
from agent.faces.quality import QualityGate
from agent.ingest.images import ImageError, read_image
from engines.ood import REASON as OOD_REASON

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

VerdictName = Literal["real", "fake", "unknown"]
TIMELINE_POINTS = 600

PeakCrops = dict[int, tuple[float, np.ndarray]]
"""track id -> (probability, aligned crop) of the frame where the track scored highest."""


class TrackReport(BaseModel):
    track_id: int
    verdict: VerdictName
    frames_judged: int
    frames_unknown: int
    unknown_reasons: dict[str, int]
    mean_probability: float | None
    """Mean per-frame probability (fused when a temporal model is configured)."""
    mean_by_model: dict[str, float] = {}
    """Mean calibrated probability of each model over the frames it judged."""
    max_rolling_score: float | None
    first_seen: float
    last_seen: float
    alerted_at: list[float]
    """Stream times at which an alert would have been raised (rolling score crossed)."""
    box: list[float]
    timeline: list[tuple[float, float | None]] = []
    """(stream time s, calibrated probability) per analysed frame of the track, None where
    the face could not be judged; at most TIMELINE_POINTS points (evenly thinned)."""


class ScoreReport(BaseModel):
    path: str
    kind: Literal["image", "video"]
    verdict: VerdictName
    threshold: float
    models: dict[str, str]
    frames_analysed: int
    tracks: list[TrackReport]


def overall_verdict(verdicts: list[str]) -> VerdictName:
    """fake if any face is fake; real if at least one face was judged real; else unknown."""
    if "fake" in verdicts:
        return "fake"
    if "real" in verdicts:
        return "real"
    return "unknown"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class FaceJudgement:
    """One face of a still: its box, the calibrated probability (None: refused), verdict."""

    box: np.ndarray
    probability: float | None
    reasons: tuple[str, ...]
    verdict: VerdictName
    crop: np.ndarray | None = None
    """The aligned face crop the model judged."""


def judge_image(
    image: np.ndarray, detector, scorer, gate: QualityGate, threshold: float, max_faces: int
) -> list[FaceJudgement]:
    """Every face of one still judged once at the threshold (no rolling window to smooth)."""
    from engines.faces import align_faces

    detections = detector.detect(image)
    if len(detections) > max_faces:
        detections = detections[np.argsort(-detections.interocular)[:max_faces]]
    if not len(detections):
        return []
    crops = align_faces(image, detections.keypoints, scorer.still_align_spec)
    reports = [gate.assess(c, k) for c, k in zip(crops, detections.keypoints)]
    ok = [i for i, r in enumerate(reports) if r.ok]
    probabilities = np.full(len(crops), np.nan, np.float32)
    if ok:
        probabilities[ok], unlike_training = scorer.still_judgements(crops[ok])
        for i in np.asarray(ok)[unlike_training]:  # the model cannot judge it: unknown
            probabilities[i] = np.nan
            reports[i] = replace(reports[i], ok=False, reasons=(*reports[i].reasons, OOD_REASON))
    judgements = []
    for box, report, p, crop in zip(detections.boxes, reports, probabilities, crops):
        judged = not np.isnan(p)
        verdict: VerdictName = "unknown" if not judged else ("fake" if p >= threshold else "real")
        judgements.append(
            FaceJudgement(box, float(p) if judged else None, report.reasons, verdict, crop)
        )
    return judgements


def score_image(
    path: Path, config: VerityConfig, detector, scorer, peak_crops: PeakCrops | None = None
) -> ScoreReport:
    """One still through the agent's detector, alignment, quality gate and model.
    `peak_crops`, when given, receives each judged face's crop (for an explanation map)."""
    try:
        image = read_image(path, config.ingest.max_frame_pixels)
    except ImageError as exc:
        raise ValueError(f"{path}: {exc}") from None
    threshold = config.scoring.threshold or scorer.still_threshold
    faces = judge_image(
        image, detector, scorer, QualityGate(config.faces.quality), threshold, config.faces.max_faces
    )
    tracks = [
        TrackReport(
            track_id=i + 1,
            verdict=face.verdict,
            frames_judged=int(face.probability is not None),
            frames_unknown=int(face.probability is None),
            unknown_reasons=dict(collections.Counter(face.reasons)),
            mean_probability=face.probability,
            mean_by_model=({scorer.still_role: face.probability}
                           if face.probability is not None else {}),
            max_rolling_score=face.probability,
            first_seen=0.0,
            last_seen=0.0,
            alerted_at=[0.0] if face.verdict == "fake" else [],
            box=[float(v) for v in face.box],
            timeline=[(0.0, face.probability)],
        )
        for i, face in enumerate(faces)
    ]
    if peak_crops is not None:
        for i, face in enumerate(faces):
            if face.probability is not None and face.crop is not None:
                peak_crops[i + 1] = (face.probability, face.crop)
    return ScoreReport(
        path=str(path),
        kind="image",
        verdict=overall_verdict([t.verdict for t in tracks]),
        threshold=threshold,
        models=scorer.model_ids,
        frames_analysed=1,
        tracks=tracks,
    )


def score_video(
    path: Path, config: VerityConfig, detector=None, scorer=None,
    peak_crops: PeakCrops | None = None,
) -> ScoreReport:
    """A whole file through the agent's own pipeline, as a non-live source. `peak_crops`,
    when given, receives each track's highest-scoring crop (for an explanation map)."""
    from agent.pipeline import Pipeline

    stream = StreamConfig(url=str(path), kind="file", id="score")
    config = config.model_copy(update={"streams": [stream]})
    reasons: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    alerted: dict[int, list[float]] = collections.defaultdict(list)

    timelines: dict[int, list[tuple[float, float | None]]] = collections.defaultdict(list)

    def collect_reasons(observations, scores) -> None:
        for obs, score in zip(observations, scores):
            track_id = obs.track.id
            reasons[track_id].update(obs.quality.reasons)
            p = None if score is None or not np.isfinite(score.fused) else float(score.fused)
            timelines[track_id].append((round(float(obs.frame.time), 3), p))
            if p is not None and peak_crops is not None:
                if track_id not in peak_crops or p > peak_crops[track_id][0]:
                    peak_crops[track_id] = (p, obs.crop.copy())

    class AlertTimes:
        def on_event(self, event) -> None:
            if event.transition.value == "new":
                alerted[event.state.track_id].append(float(event.state.alert_started_at or event.time))

    pipeline = Pipeline(
        config, listeners=[AlertTimes()], detector=detector, scorer=scorer, on_observations=collect_reasons
    )
    try:
        stats = pipeline.run()
    finally:
        pipeline.close()
    if pipeline.failed_streams:
        raise ValueError(pipeline.failed_streams["score"])
    tracks = []
    for state in pipeline.track_states()["score"]:
        # A track that ever raised an alert is fake; otherwise real once judged enough.
        verdict: VerdictName = "fake" if state.ever_fake else state.rolling.verdict.value
        tracks.append(
            TrackReport(
                track_id=state.track_id,
                verdict=verdict,
                frames_judged=state.rolling.judged_frames,
                frames_unknown=state.rolling.unknown_frames,
                unknown_reasons=dict(reasons[state.track_id]),
                mean_probability=state.mean_probability,
                mean_by_model=state.mean_by_role,
                max_rolling_score=state.max_rolling if state.rolling.judged_frames else None,
                first_seen=state.first_seen,
                last_seen=state.last_seen,
                alerted_at=alerted[state.track_id],
                box=[float(v) for v in state.box],
                timeline=_thin(timelines[state.track_id]),
            )
        )
    tracks.sort(key=lambda t: t.track_id)
    return ScoreReport(
        path=str(path),
        kind="video",
        verdict=overall_verdict([t.verdict for t in tracks]),
        threshold=pipeline.threshold,
        models=pipeline.scorer.model_ids,
        frames_analysed=stats.frames_analysed,
        tracks=tracks,
    )


def _thin(points: list, limit: int = TIMELINE_POINTS) -> list:
    if len(points) <= limit:
        return points
    keep = np.linspace(0, len(points) - 1, limit).round().astype(int)
    return [points[i] for i in keep]
