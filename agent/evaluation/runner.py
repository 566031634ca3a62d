"""Run the agent's own face pipeline over evaluation files, clean or perturbed.

Videos go through `agent.pipeline.Pipeline` exactly as `verity score` runs them (decode at
the configured analysis rate, detect every k-th frame, track, align, quality gate, score);
a still is one frame: detect, align, gate, score, as `verity score` does for images. Every
judged face's calibrated probability is kept with its frame number, so the report can apply
the protocol: per frame the max over faces, per video the mean over frames.

One `Evaluator` holds the model and the detector, so a sweep loads them once.
"""

from __future__ import annotations

import collections
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from agent.config import StreamConfig, VerityConfig
from agent.evaluation.manifest import EvalItem
from agent.faces.quality import QualityGate
from agent.ingest.images import ImageError, read_image
from agent.pipeline import FaceScorer, Pipeline
from agent.scoring.report import VerdictName, judge_image, overall_verdict
from engines import metrics, perturbations
from engines.faces import FaceDetector, create_detector

Status = Literal["judged", "unknown", "missing", "failed"]


@dataclass(frozen=True)
class Perturbation:
    """One perturbation type at one level (engines.perturbations)."""

    type: str
    level: int

    def __post_init__(self) -> None:
        perturbations.check(self.type, self.level)

    @classmethod
    def parse(cls, spec: str) -> Perturbation:
        return cls(*perturbations.parse_spec(spec))

    @property
    def spec(self) -> str:
        return f"{self.type}:{self.level}"

    @property
    def info(self) -> perturbations.PerturbationType:
        return perturbations.TYPES[self.type]

    def describe(self) -> dict:
        info = self.info
        return {
            "type": self.type,
            "level": self.level,
            "parameter": info.parameter,
            "value": info.value(self.level),
            "scope": info.scope,
        }


@dataclass(frozen=True)
class StillsPolicy:
    """How every still of both classes is re-encoded before judging (None: left as is).

    Real photos and generated stills differ in size and compression; without one common
    re-encoding a still-image AUC partly measures the file format.
    """

    max_side: int | None = None
    """Downscale (never up) so the longer side is at most this many pixels."""
    eye_px: float | None = None
    """Downscale (never up) so the largest face's eye distance is this many pixels, as the
    training cache does (engines.data.cache, still_interocular)."""
    jpeg_quality: int | None = None
    """Then JPEG encode and decode at this quality."""

    def describe(self) -> dict:
        return {"max_side": self.max_side, "eye_px": self.eye_px, "jpeg_quality": self.jpeg_quality}


@dataclass
class FileResult:
    """What the agent made of one file."""

    item: EvalItem
    status: Status
    verdict: VerdictName | None = None
    """The agent's own verdict, as `verity score` gives it (None for missing/failed)."""
    frames_analysed: int = 0
    faces: int = 0
    """Face observations (a face in a frame)."""
    faces_refused: int = 0
    """Observations the quality gate refused (never scored)."""
    refused_reasons: dict[str, int] = field(default_factory=dict)
    face_frames: int = 0
    """Analysed frames that held at least one face."""
    judged_frames: list[int] = field(default_factory=list)
    judged_probabilities: list[float] = field(default_factory=list)
    """Per judged face: its frame number and calibrated fake probability."""
    judged_by_model: list[dict[str, float]] = field(default_factory=list)
    """Per judged face: each model's own calibrated probability, by role (spatial, temporal
    once the track has a window, stills), of which judged_probabilities is the fusion."""
    first_alert_s: float | None = None
    """Stream time (seconds from the file's first frame) of the agent's first alert on any of
    its tracks, at the alert threshold in use (None: no alert; stills never alert)."""
    error: str | None = None
    seconds: float = 0.0

    @property
    def alerted(self) -> bool:
        return self.first_alert_s is not None

    def frame_scores(self) -> tuple[list[int], np.ndarray]:
        """Judged frames and their scores: per frame the max over its judged faces."""
        if not self.judged_probabilities:
            return [], np.zeros(0)
        keys, scores, _, _ = metrics.frame_and_video_scores(
            [self.item.rel] * len(self.judged_frames), self.judged_frames, self.judged_probabilities
        )
        return [k[1] for k in keys], scores

    @property
    def frames_judged(self) -> int:
        return len(set(self.judged_frames))

    @property
    def frames_unknown(self) -> int:
        """Face-frames in which every face was refused by the quality gate."""
        return self.face_frames - self.frames_judged

    @property
    def video_score(self) -> float | None:
        """Mean of the frame scores; None when no face was judged."""
        _, scores = self.frame_scores()
        return float(scores.mean()) if len(scores) else None

    @property
    def unknown_reason(self) -> str | None:
        if self.status != "unknown":
            return None
        return "no_face" if self.faces == 0 else "all_faces_refused"


class Evaluator:
    """Judges evaluation files with one model and one detector."""

    def __init__(
        self,
        config: VerityConfig,
        *,
        detector: FaceDetector | None = None,
        scorer: FaceScorer | None = None,
        max_seconds: float | None = None,
        stills: StillsPolicy | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.scorer = scorer or FaceScorer(config.models)
        self.detector = detector or create_detector(config.faces.detector)
        self.threshold: float = config.scoring.threshold or self.scorer.threshold
        self.still_threshold: float = config.scoring.threshold or self.scorer.still_threshold
        self.threshold_source = (
            "config scoring.threshold" if config.scoring.threshold else "model card"
        )
        self.max_seconds = max_seconds
        self.stills = stills or StillsPolicy()
        self.seed = seed
        self.gate = QualityGate(config.faces.quality)
        # Eye-distance rescale per (still, size): one detection per still for a whole sweep.
        self._still_factor: dict[tuple[str, tuple[int, ...]], float] = {}

    # -- many files ------------------------------------------------------------------------
    def run(
        self,
        items: Iterable[EvalItem],
        perturbation: Perturbation | None = None,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> list[FileResult]:
        results = []
        for item in items:
            result = self.evaluate(item, perturbation)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    # -- one file --------------------------------------------------------------------------
    def evaluate(self, item: EvalItem, perturbation: Perturbation | None = None) -> FileResult:
        """One file; problems with the file become status missing/failed, never exceptions."""
        started = time.perf_counter()
        if not item.path.is_file():
            result = FileResult(item, "missing", error=f"{item.path}: no such file")
        else:
            try:
                if item.kind == "image":
                    result = self._still(item, perturbation)
                else:
                    result = self._video(item, perturbation)
            except Exception as exc:  # one broken file must not end a long evaluation
                result = FileResult(item, "failed", error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        return result

    def _seed(self, item: EvalItem) -> int:
        return perturbations.derive_seed(self.seed, item.rel)

    # -- stills ----------------------------------------------------------------------------
    def prepare_still(self, item: EvalItem, image: np.ndarray) -> np.ndarray:
        """The still as the policy re-encodes it (both classes alike)."""
        policy = self.stills
        if policy.max_side and max(image.shape[:2]) > policy.max_side:
            image = _rescale(image, policy.max_side / max(image.shape[:2]))
        if policy.eye_px:
            key = (item.rel, image.shape)
            factor = self._still_factor.get(key)
            if factor is None:
                found = self.detector.detect(image)
                largest = float(found.interocular.max()) if len(found) else policy.eye_px
                factor = min(1.0, policy.eye_px / largest)
                self._still_factor[key] = factor
            if factor < 1.0:
                image = _rescale(image, factor)
        if policy.jpeg_quality:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, policy.jpeg_quality])
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        return image

    def _still(self, item: EvalItem, perturbation: Perturbation | None) -> FileResult:
        try:
            image = read_image(item.path, self.config.ingest.max_frame_pixels)
        except ImageError as exc:
            raise ValueError(f"{item.path}: {exc}") from None
        image = self.prepare_still(item, image)
        if perturbation is not None:
            image = perturbations.apply_to_still(
                image, perturbation.type, perturbation.level, seed=self._seed(item)
            )
        result = FileResult(item, "unknown", frames_analysed=1)
        faces = judge_image(
            image, self.detector, self.scorer, self.gate, self.still_threshold,
            self.config.faces.max_faces,
        )
        judged = [f.probability for f in faces if f.probability is not None]
        result.faces, result.face_frames = len(faces), int(bool(faces))
        result.faces_refused = len(faces) - len(judged)
        result.refused_reasons = dict(collections.Counter(r for f in faces for r in f.reasons))
        result.judged_frames = [0] * len(judged)
        result.judged_probabilities = judged
        result.judged_by_model = [{self.scorer.still_role: p} for p in judged]
        verdicts = [f.verdict for f in faces]
        result.verdict = overall_verdict(verdicts)
        result.status = "judged" if result.judged_probabilities else "unknown"
        return result

    # -- videos ----------------------------------------------------------------------------
    def _video(self, item: EvalItem, perturbation: Perturbation | None) -> FileResult:
        if perturbation is not None and perturbation.info.scope == "file":
            with tempfile.TemporaryDirectory(prefix="verity-eval-") as tmp:
                encoded = perturbations.reencode(
                    item.path, Path(tmp) / "perturbed.mp4", perturbation.type,
                    perturbation.level, max_seconds=self.max_seconds,
                )
                return self._run_pipeline(item, encoded, None)
        transform = None
        if perturbation is not None:
            transform = perturbations.frame_transform(
                perturbation.type, perturbation.level, seed=self._seed(item)
            )
        return self._run_pipeline(item, item.path, transform)

    def _run_pipeline(
        self, item: EvalItem, path: Path, transform: Callable[[np.ndarray], np.ndarray] | None
    ) -> FileResult:
        result = FileResult(item, "unknown")
        face_frames: set[int] = set()
        reasons: collections.Counter = collections.Counter()

        def collect(observations, scores) -> None:
            for obs, score in zip(observations, scores):
                result.faces += 1
                face_frames.add(obs.frame.index)
                if score is None:
                    result.faces_refused += 1
                    reasons.update(obs.quality.reasons)
                else:
                    result.judged_frames.append(obs.frame.index)
                    result.judged_probabilities.append(float(score.fused))
                    result.judged_by_model.append(dict(score.by_role))

        stream = StreamConfig(url=str(path), kind="file", id="eval", max_seconds=self.max_seconds)
        config = self.config.model_copy(update={"streams": [stream]})
        pipeline = Pipeline(
            config, detector=self.detector, scorer=self.scorer, on_observations=collect,
            frame_transform=transform,
        )
        try:
            stats = pipeline.run()
        finally:
            pipeline.close()
        if pipeline.failed_streams:
            raise ValueError(pipeline.failed_streams["eval"])
        # A track that ever raised an alert is fake; otherwise its rolling verdict (as `score`).
        states = pipeline.track_states()["eval"]
        verdicts = ["fake" if state.ever_fake else state.rolling.verdict.value for state in states]
        alerts = [s.first_alert_at for s in states if s.first_alert_at is not None]
        if alerts:  # stream time starts at 0 at a file's first frame
            result.first_alert_s = round(min(alerts), 3)
        result.verdict = overall_verdict(verdicts)
        result.frames_analysed = stats.frames_analysed
        result.face_frames = len(face_frames)
        result.refused_reasons = dict(reasons)
        result.status = "judged" if result.judged_probabilities else "unknown"
        return result


def _rescale(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
