"""The deepfake models as the pipeline sees them: face crops in, calibrated probabilities out.

The spatial model judges a track's face every `models.spatial_every` analysed frames (at once
for a new track, and on every frame while its score rises); the frames between carry its last
judgement. The temporal model (when configured) judges a
track's window of its last T consecutive analysed frames (a frame without a judged face
restarts it), every `models.temporal_stride` frames of that track, either always
(`continuous`) or once the track's rolling score reaches `models.temporal_escalate_at`
(`escalation`). When a track has a temporal score, its per-frame probability is the fusion of
both models (the rule, and any weights, stored in the temporal card by its trainer);
otherwise it is the spatial model's calibrated probability.

When the spatial pack ships an out-of-distribution check (engines.ood) and the engine serves
the embedding, each crop's distance to the training faces is measured too; a crop beyond the
pack's threshold is flagged, and the pipeline reports that face as `unknown`.

The deep-look model (`models.deep`: a head on a pretrained backbone, ~65 ms per face on a CPU)
judges each track at a sampled rate: at once for a new track, then every `deep_every_s` of
stream time, every `deep_rising_every_s` while the track's rolling score is at or above
`deep_escalate_at`. The calibrated probability of the mean logit of the track's last
`deep_window` looks is held for the track's frames in between and, by `deep_rule`, is the
frame's probability (`deep`), is raised by the spatial/temporal fusion (`max`), or is raised
by the spatial probability where that reaches the spatial card's threshold (`gated_max`);
under `fused`, the mean logit of those looks and the mean spatial logit of the track's last
seconds are weighted and calibrated as the deep card's `spatial_fusion` says, and raised to
the frame's spatial probability where that reaches `spatial_gate` (as under `gated_max`). It
runs one face per call: its INT8 backbone scales activations per call, so a batched face's
score would depend on its neighbours.

Still images have no window: they are judged by `models.stills` when configured (a per-crop
pack trained for photos, with its own crop, calibration, threshold and out-of-distribution
check), else by the deep model when configured, else by the spatial model.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from agent.config import ModelsConfig
from agent.scoring.fusion import Fusion, calibrate
from engines.backbone import BackboneError, locate
from engines.faces.align import AlignSpec, align_faces, recrop
from engines.ood import OODStats
from engines.registry import ModelPack, PackError, resolve_pack
from engines.runtime import Engine, create_engine

log = logging.getLogger("agent.pipeline")

TrackKey = tuple[str, int]  # (stream id, track id)
FRAMES_WITHOUT_CLOCK = 50  # the fused rule's spatial window when frames carry no stream time


def _alert_threshold(pack: ModelPack) -> float:
    """The card's stream-level calibrated threshold, else its per-frame one."""
    card = pack.card
    return card.alert_threshold.value if card.alert_threshold else card.threshold


@dataclass
class _Window:
    crops: collections.deque
    spatial_logits: collections.deque
    since_run: int = 0
    temporal_logit: float | None = None
    temporal_probability: float | None = None
    last_step: int | None = None

    def restart(self) -> None:
        """A gap in the track: the next window starts afresh, and the last temporal score,
        which judged frames before the gap, no longer speaks for the current ones."""
        self.crops.clear()
        self.spatial_logits.clear()
        self.since_run = 0
        self.temporal_logit = None
        self.temporal_probability = None


@dataclass
class _DeepLooks:
    """A track's deep looks: when the latest was (stream seconds), the last few logits, and
    the calibrated probability of their mean (what the track's frames carry)."""

    time: float
    logits: collections.deque
    probability: float = float("nan")
    wall: float = 0.0
    """time.monotonic() of the latest look (stream clocks differ between streams)."""


class LookBudget:
    """A token bucket of CPU seconds: `cores` seconds of deep looks per wall second at most,
    with at most `burst_s` saved up (it starts empty: first looks are never deferred anyway)."""

    def __init__(self, cores: float, burst_s: float = 1.0) -> None:
        self.cores = cores
        self.burst_s = burst_s
        self._tokens = 0.0
        self._at = time.monotonic()

    def available(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst_s, self._tokens + (now - self._at) * self.cores)
        self._at = now
        return self._tokens > 0

    def spend(self, seconds: float) -> None:
        self._tokens -= seconds


@dataclass
class FrameScore:
    """One judged face in one frame: calibrated probability per model role, and the fusion."""

    by_role: dict[str, float] = field(default_factory=dict)
    fused: float = float("nan")
    ood_distance: float | None = None
    out_of_distribution: bool = False
    spatial_carried: bool = False
    """The spatial judgement is the track's last one, carried (models.spatial_every)."""


class FaceScorer:
    """Runs the spatial model (and the temporal one when configured) on batches of crops."""

    def __init__(self, config: ModelsConfig) -> None:
        self.config = config
        self.spatial_pack: ModelPack = self._load(config.spatial, "spatial")
        self.spatial: Engine = self._engine(self.spatial_pack)
        self.temporal_pack: ModelPack | None = None
        self.temporal: Engine | None = None
        self.fusion: Fusion | None = None
        if config.temporal:
            self.temporal_pack = self._load(config.temporal, "temporal")
            self.temporal = self._engine(self.temporal_pack)
            self.fusion = Fusion.from_card(self.temporal_pack)
            if self.fusion is None:
                raise PackError(
                    f"models.temporal: pack {self.temporal_pack.id} has no fusion entry in its "
                    "card (training.fusion); retrain it or set models.temporal: null"
                )
            self._check_fusion_partner()
        self.ood = self._ood(self.spatial_pack, self.spatial)
        self.deep_pack: ModelPack | None = None
        self.deep: Engine | None = None
        if config.deep:
            self.deep_pack = self._load(config.deep, "deep")
            try:
                self.deep = self._engine(self.deep_pack)
            except BackboneError as exc:
                raise PackError(f"models.deep: {exc}") from exc
            self._check_deep_fusion()
        self._looks: dict[TrackKey, _DeepLooks] = {}
        self._last_spatial: dict[TrackKey, tuple[int, float, float]] = {}
        """Per track under models.spatial_every > 1: (analysed-frame step, spatial logit, OOD
        distance) of its latest spatial judgement, carried by the frames in between."""
        self.crops_carried = 0
        """Faces that carried their track's last spatial judgement (models.spatial_every)."""
        self._recent_spatial: dict[TrackKey, collections.deque] = {}
        """Per track, (stream time, spatial logit) of its latest frames: the fused rule's
        spatial side."""
        self.deep_looks = 0
        self.deep_seconds = 0.0
        self.deep_deferred = 0
        """Looks that fell due but waited for the CPU budget (models.deep_cpu_share)."""
        share = config.deep_cpu_share
        self._look_budget = LookBudget(share * (os.cpu_count() or 1)) if share else None
        self.stills_pack: ModelPack | None = None
        self.stills: Engine | None = None
        self.stills_ood: OODStats | None = None
        if config.stills:
            self.stills_pack = self._load(config.stills, "stills", expect_role="spatial")
            self.stills = self._engine(self.stills_pack)
            self.stills_ood = self._ood(self.stills_pack, self.stills)
        self._windows: dict[TrackKey, _Window] = {}
        self.inference_seconds = 0.0
        self.spatial_seconds = 0.0
        self.temporal_seconds = 0.0
        self.crops_scored = 0
        self.windows_scored = 0
        log.info("spatial model %s on %s", self.spatial_pack.id, self.spatial.runtime)
        if self.temporal_pack is not None:
            log.info("temporal model %s on %s (%s, every %d frames)", self.temporal_pack.id,
                     self.temporal.runtime, config.temporal_mode, config.temporal_stride)
        if self.deep_pack is not None:
            log.info("deep model %s on %s (rule %s, a look every %.2g s, %.2g s while rising)",
                     self.deep_pack.id, self.deep.runtime, config.deep_rule, config.deep_every_s,
                     config.deep_rising_every_s)
        if self.stills_pack is not None:
            log.info("stills model %s on %s", self.stills_pack.id, self.stills.runtime)

    def _ood(self, pack: ModelPack, engine: Engine) -> OODStats | None:
        """The pack's out-of-distribution check, when shipped, enabled and servable."""
        if not self.config.ood_check or pack.card.ood is None:
            return None
        if not engine.has_embedding:
            log.warning("out-of-distribution check off: the %s engine of %s serves logits only",
                        engine.runtime, pack.id)
            return None
        try:
            return OODStats.load(pack.ood_path)
        except (OSError, ValueError, KeyError) as exc:
            raise PackError(
                f"model pack {pack.folder}: out-of-distribution file {pack.card.ood.file} is "
                f"unreadable ({exc}); restore it or set models.ood_check: false"
            ) from exc

    def _check_fusion_partner(self) -> None:
        """The fusion weights and the fused alert threshold hold for the spatial model they
        were fitted with only: another one would alert at an unmeasured false-alarm rate."""
        fusion = self.temporal_pack.card.training.get("fusion") or {}
        fitted_with = fusion.get("spatial_onnx_sha256")
        if fitted_with and fitted_with != self.spatial_pack.card.onnx_sha256:
            raise PackError(
                f"models.temporal: pack {self.temporal_pack.id}'s fusion was fitted with "
                f"{fusion.get('spatial_model', 'another spatial model')}, not "
                f"{self.spatial_pack.id}; refit it (verity train temporal --spatial-pack "
                f"{self.config.spatial}) or set models.temporal: null (spatial only)"
            )

    def _check_deep_fusion(self) -> None:
        """deep_rule fused needs the deep card's fusion, fitted with this spatial model."""
        if self.config.deep_rule != "fused":
            return
        fusion = self.deep_pack.card.spatial_fusion
        if fusion is None:
            raise PackError(
                f"models.deep_rule: fused, but deep pack {self.deep_pack.id} has no "
                "spatial_fusion in its card; retrain it with a spatial_fusion section or set "
                "models.deep_rule: gated_max")
        if fusion.spatial_pack != self.spatial_pack.id:
            raise PackError(
                f"models.deep_rule: fused: deep pack {self.deep_pack.id}'s fusion was fitted with "
                f"{fusion.spatial_pack}, not {self.spatial_pack.id}; set models.spatial: "
                f"{fusion.spatial_pack.split('@')[0]}, retrain the deep pack with this spatial "
                "pack, or set models.deep_rule: gated_max")

    def _load(self, name: str, setting: str, expect_role: str | None = None) -> ModelPack:
        role = expect_role or setting
        try:
            pack = resolve_pack(name)
            if pack.card.backbone is not None:
                locate(pack.card.backbone)  # installed, the right version, the right bytes
        except (PackError, BackboneError) as exc:  # say which setting named it: several packs are configured
            raise PackError(f"models.{setting}: {exc}") from exc
        if pack.card.role != role:
            raise PackError(
                f"models.{setting}: pack {pack.id} has role {pack.card.role!r}, not {role!r}"
            )
        return pack

    def _engine(self, pack: ModelPack) -> Engine:
        cfg = self.config
        return create_engine(
            pack, cfg.runtime, threads=cfg.threads, max_batch=cfg.max_batch, cache_dir=cfg.engine_cache_dir
        )

    # -- what the pipeline needs to know -----------------------------------------------------
    @property
    def align_spec(self) -> AlignSpec:
        return self.spatial_pack.card.input.align

    @property
    def decision_pack(self) -> ModelPack:
        """The pack whose card holds the alert threshold: the deep one when configured, else
        the temporal one when fusing (its threshold applies to the fused probability), else
        the spatial one."""
        return self.deep_pack or self.temporal_pack or self.spatial_pack

    @property
    def threshold(self) -> float:
        """The alert threshold: the stream-level calibrated one when the card has it."""
        return _alert_threshold(self.decision_pack)

    @property
    def still_role(self) -> str:
        """Which model judges stills: "stills" when configured, else "deep" when configured,
        else "spatial"."""
        if self.stills_pack is not None:
            return "stills"
        return "deep" if self.deep_pack is not None else "spatial"

    @property
    def still_pack(self) -> ModelPack:
        return self.stills_pack or self.deep_pack or self.spatial_pack

    @property
    def still_align_spec(self) -> AlignSpec:
        return self.still_pack.card.input.align

    @property
    def still_threshold(self) -> float:
        """The threshold for a still: it has no window, so its probability is one per-crop
        model's alone (the stills model, else the spatial one) and that card's threshold
        applies, with or without fusion."""
        return _alert_threshold(self.still_pack)

    @property
    def model_ids(self) -> dict[str, str]:
        ids = {"spatial": self.spatial_pack.id}
        if self.temporal_pack is not None:
            ids["temporal"] = self.temporal_pack.id
        if self.deep_pack is not None:
            ids["deep"] = self.deep_pack.id
        if self.stills_pack is not None:
            ids["stills"] = self.stills_pack.id
        return ids

    # -- spatial ----------------------------------------------------------------------------
    def spatial_logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits for (N, H, W, 3) uint8 crops, in chunks of at most max_batch."""
        return self._spatial(crops, False)[0]

    def _spatial(self, crops: np.ndarray, ood: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits, OOD distances or None)."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32), (np.zeros((0,), np.float32) if ood else None)
        started = time.perf_counter()
        step = self.config.max_batch
        chunks = [crops[i : i + step] for i in range(0, len(crops), step)]
        if ood and self.ood is not None:
            outs = [self.spatial.infer_with_embedding(c) for c in chunks]
            logits = np.concatenate([o[0] for o in outs])
            distances = self.ood.distances(np.concatenate([o[1] for o in outs]))
        else:
            logits = np.concatenate([self.spatial.infer(c) for c in chunks])
            distances = None
        spent = time.perf_counter() - started
        self.inference_seconds += spent
        self.spatial_seconds += spent
        self.crops_scored += len(crops)
        return logits, distances

    def _spatial_every(self, keys: list[TrackKey], crops: np.ndarray, rolling: list[float | None],
                       steps: list[int] | None
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(logits, OOD distances or None, which were judged now): the spatial model judges a
        track's face every `models.spatial_every` analysed frames, and at once for a new track,
        a gap in it, or a rising score (rolling at or above deep_escalate_at); the frames
        between carry the track's last judgement."""
        every = self.config.spatial_every
        ood = self.ood is not None
        fresh = np.ones(len(keys), bool)
        if every > 1 and steps is not None:
            for i, key in enumerate(keys):
                last = self._last_spatial.get(key)
                rising = rolling[i] is not None and rolling[i] >= self.config.deep_escalate_at
                fresh[i] = (last is None or rising or not 0 < steps[i] - last[0] < every)
        if fresh.all():
            logits, distances = self._spatial(crops, ood)
        else:
            judged, judged_distances = self._spatial(crops[fresh], ood)
            logits = np.empty(len(keys), np.float32)
            distances = np.empty(len(keys), np.float32) if ood else None
            logits[fresh] = judged
            if distances is not None:
                distances[fresh] = judged_distances
            for i in np.flatnonzero(~fresh):
                _, logits[i], carried = self._last_spatial[keys[i]]
                if distances is not None:
                    distances[i] = carried
            self.crops_carried += int((~fresh).sum())
        if every > 1 and steps is not None:
            for i in np.flatnonzero(fresh):
                self._last_spatial[keys[i]] = (
                    steps[i], float(logits[i]), float(distances[i]) if distances is not None else 0.0)
        return logits, distances, fresh

    def spatial_probabilities(self, crops: np.ndarray) -> np.ndarray:
        return calibrate(self.spatial_logits(crops), self.spatial_pack.card.calibration)

    def spatial_judgements(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probabilities, out-of-distribution flags) of the spatial model for
        one-off crops."""
        logits, distances = self._spatial(crops, self.ood is not None)
        flags = distances > self.ood.threshold if distances is not None else np.zeros(len(crops), bool)
        return calibrate(logits, self.spatial_pack.card.calibration), flags

    def still_judgements(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probabilities, out-of-distribution flags) for the faces of a still,
        cropped with `still_align_spec`: the stills model's when configured, else the deep
        model's (under deep_rule fused joined with the spatial model's, whose out-of-
        distribution check then flags the face, as on video frames; the deep model alone has
        none), else the spatial model's."""
        if self.stills is None and self.deep is not None:
            if self.config.deep_rule == "fused":
                return self._fused_still(crops)
            return self.deep_probabilities(crops), np.zeros(len(crops), bool)
        if self.stills is None:
            return self.spatial_judgements(crops)
        if len(crops) == 0:
            return np.zeros(0, np.float32), np.zeros(0, bool)
        started = time.perf_counter()
        chunks = [crops[i : i + self.config.max_batch]
                  for i in range(0, len(crops), self.config.max_batch)]
        flags = np.zeros(len(crops), bool)
        if self.stills_ood is not None:
            outs = [self.stills.infer_with_embedding(c) for c in chunks]
            logits = np.concatenate([o[0] for o in outs])
            distances = self.stills_ood.distances(np.concatenate([o[1] for o in outs]))
            flags = distances > self.stills_ood.threshold
        else:
            logits = np.concatenate([self.stills.infer(c) for c in chunks])
        self.inference_seconds += time.perf_counter() - started
        self.crops_scored += len(crops)
        return calibrate(logits, self.stills_pack.card.calibration), flags

    def _fused_still(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, flags = self._fused_still_judged(crops)
        return calibrate(logits, self.deep_pack.card.spatial_fusion.calibration), flags

    def fused_still_logits(self, crops: np.ndarray) -> np.ndarray:
        """Stills under deep_rule fused (crops aligned with `still_align_spec`): each one's deep
        look and the spatial model's logit on its own crop cut from the deep crop (a still has
        no track to average over), weighted as the deep card's spatial_fusion says."""
        return self._fused_still_judged(crops)[0]

    def _fused_still_judged(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fused logits, out-of-distribution flags by the spatial model's check)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32), np.zeros(0, bool)
        deep = self.deep_logits(crops)
        spatial, distances = self._spatial(
            recrop(crops, self.deep_pack.card.input.align, self.align_spec), self.ood is not None)
        flags = (distances > self.ood.threshold if distances is not None
                 else np.zeros(len(crops), bool))
        return self.deep_pack.card.spatial_fusion.logit(deep, spatial), flags

    def still_logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits of the model that judges stills (see `still_role`), for explanations."""
        if self.stills is not None:
            return np.concatenate([self.stills.infer(crops[i : i + self.config.max_batch])
                                   for i in range(0, len(crops), self.config.max_batch)])
        if self.deep is not None:
            return self.deep_logits(crops)
        return self.spatial_logits(crops)

    # -- deep look --------------------------------------------------------------------------
    def deep_logits(self, crops: np.ndarray) -> np.ndarray:
        """Deep-model logits for crops cut with the deep pack's AlignSpec, one face per call
        (see the module docstring)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        started = time.perf_counter()
        logits = np.concatenate([self.deep.infer(crops[i : i + 1]) for i in range(len(crops))])
        spent = time.perf_counter() - started
        self.inference_seconds += spent
        self.deep_seconds += spent
        self.deep_looks += len(crops)
        return logits

    def deep_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated deep-model probabilities of single crops (stills)."""
        return calibrate(self.deep_logits(crops), self.deep_pack.card.calibration)

    def _deep_due(self, key: TrackKey, t: float | None, rolling: float | None) -> bool:
        look = self._looks.get(key)
        if look is None or t is None or t < look.time:  # stream time restarted: a new stream
            return True
        rising = rolling is not None and rolling >= self.config.deep_escalate_at
        every = self.config.deep_rising_every_s if rising else self.config.deep_every_s
        return t - look.time >= every - 1e-6

    def _deep_score(self, keys: list[TrackKey], frames: list[np.ndarray],
                    keypoints: list[np.ndarray], rolling: list[float | None],
                    times: list[float] | None, scores: list[FrameScore],
                    live: list[bool] | None = None) -> None:
        spec = self.deep_pack.card.input.align
        due = [i for i, key in enumerate(keys)
               if self._deep_due(key, times[i] if times else None, rolling[i])]
        due.sort(key=lambda i: self._look_priority(keys[i], rolling[i]))
        budget = self._look_budget
        out_of_budget = False
        for i in due:
            # Only live streams share the budget: a file judged as fast as the CPU allows
            # (verity score, eval, calibrate) gets every look, so its figures never depend on
            # the machine's speed. A track's first look is never deferred.
            limited = budget is not None and bool(live and live[i]) and keys[i] in self._looks
            if limited and (out_of_budget or not budget.available()):
                out_of_budget = True
                self.deep_deferred += 1  # it keeps its last deep score for now
                continue
            started = time.perf_counter()
            crop = align_faces(frames[i], keypoints[i][None], spec)
            (logit,) = self.deep_logits(crop)
            if budget is not None and live and live[i]:
                budget.spend(time.perf_counter() - started)
            looks = self._looks.get(keys[i])
            if looks is None:
                looks = self._looks[keys[i]] = _DeepLooks(
                    0.0, collections.deque(maxlen=self.config.deep_window))
            looks.time = times[i] if times else 0.0
            looks.wall = time.monotonic()
            looks.logits.append(float(logit))
            # The mean logit of the last looks: one look is one frame's opinion, and a
            # real face's single-frame spikes would otherwise set the alert threshold.
            looks.probability = float(calibrate(np.array([np.mean(looks.logits)]),
                                                self.deep_pack.card.calibration)[0])
        for i, key in enumerate(keys):
            looks = self._looks[key]
            scores[i].by_role["deep"] = looks.probability
            scores[i].fused = self._join_deep(looks, key, scores[i])

    def _look_priority(self, key: TrackKey, rolling: float | None) -> tuple:
        """New tracks first (a face with no deep score has no decision), then rising scores,
        then the track whose latest look is oldest."""
        looks = self._looks.get(key)
        if looks is None:
            return (0, 0.0)
        rising = rolling is not None and rolling >= self.config.deep_escalate_at
        return (1 if rising else 2, looks.wall)

    def _join_deep(self, looks: _DeepLooks, key: TrackKey, score: FrameScore) -> float:
        """The frame's probability under `deep_rule`: the deep card's joint decision with the
        spatial model (`fused`), the deep score alone (`deep`), raised to the spatial/temporal
        fusion (`max`), or raised to the spatial probability only where that reaches
        `models.spatial_gate` (`gated_max`; by default the spatial card's own per-frame
        threshold: the always-on model overrides only when it alarms)."""
        rule = self.config.deep_rule
        deep = looks.probability
        if rule == "fused":
            spatial = np.mean([logit for _, logit in self._recent_spatial[key]])
            fused = float(self.deep_pack.card.spatial_fusion.probability(np.mean(looks.logits), spatial))
            # The weighted sum dilutes a sure spatial alarm: where the frame's spatial
            # probability reaches the gate (above every real face measured), it still counts.
            now = score.by_role["spatial"]
            return max(fused, now) if now >= self.spatial_gate else fused
        if rule == "deep":
            return deep
        if rule == "max":
            return max(deep, score.fused)
        spatial = score.by_role["spatial"]
        return max(deep, spatial) if spatial >= self.spatial_gate else deep

    @property
    def spatial_gate(self) -> float:
        """The spatial probability from which gated_max lets the spatial model raise a score."""
        gate = self.config.spatial_gate
        return gate if gate is not None else self.spatial_pack.card.threshold

    # -- all models, per track --------------------------------------------------------------
    def score(
        self,
        keys: list[TrackKey],
        crops: np.ndarray,
        frames: list[np.ndarray],
        keypoints: list[np.ndarray],
        rolling: list[float | None],
        steps: list[int] | None = None,
        times: list[float] | None = None,
        live: list[bool] | None = None,
    ) -> list[FrameScore]:
        """Scores for judged faces: their track keys, spatial crops, source frames and
        keypoints (for the temporal and deep models' own alignment), current rolling scores,
        the stream's analysed-frame number of each face (steps) and its stream time in seconds
        (times: the deep look's sampling clock; without it every call is a look), and whether
        each face's stream is live (live: only live streams' looks share the CPU budget).

        A temporal window is T consecutive analysed frames of one track, as the model was
        trained: when a track's face was not judged in an analysed frame (refused by the
        quality gate, missed), its window restarts rather than bridge the gap, whose motion
        would read as temporal inconsistency."""
        logits, distances, fresh = self._spatial_every(keys, crops, rolling, steps)
        spatial = calibrate(logits, self.spatial_pack.card.calibration)
        scores = [FrameScore({"spatial": float(p)}, float(p), spatial_carried=not f)
                  for p, f in zip(spatial, fresh)]
        if distances is not None:
            for score, distance in zip(scores, distances):
                score.ood_distance = float(distance)
                score.out_of_distribution = bool(distance > self.ood.threshold)
        self._temporal_score(keys, crops, frames, keypoints, rolling, steps, logits, spatial, scores)
        if self.deep is not None and self.config.deep_rule == "fused":
            self._remember_spatial(keys, logits, times, fresh)
        if self.deep is not None and keys:
            self._deep_score(keys, frames, keypoints, rolling, times, scores, live)
        return scores

    def _temporal_score(self, keys, crops, frames, keypoints, rolling, steps, logits, spatial,
                        scores: list[FrameScore]) -> None:
        if self.temporal is None or not keys:
            return
        spec = self.temporal_pack.card.input
        same_crop = spec.align == self.align_spec
        due: list[TrackKey] = []
        for i, key in enumerate(keys):
            window = self._windows.get(key)
            if window is None:
                window = _Window(collections.deque(maxlen=spec.frames), collections.deque(maxlen=spec.frames))
                self._windows[key] = window
            if steps is not None:
                if window.last_step is not None and steps[i] != window.last_step + 1:
                    window.restart()
                window.last_step = steps[i]
            crop = crops[i] if same_crop else align_faces(frames[i], keypoints[i][None], spec.align)[0]
            window.crops.append(crop)
            window.spatial_logits.append(float(logits[i]))
            window.since_run += 1
            escalated = self.config.temporal_mode == "continuous" or (
                rolling[i] is not None and rolling[i] >= self.config.temporal_escalate_at
            )
            full = len(window.crops) == spec.frames
            if full and escalated and (window.temporal_logit is None or window.since_run >= self.config.temporal_stride):
                due.append(key)
        if due:
            started = time.perf_counter()
            batch = np.stack([np.stack(self._windows[k].crops) for k in due])
            step = self.config.max_batch
            outputs = np.concatenate(
                [self.temporal.infer(batch[i : i + step]) for i in range(0, len(batch), step)]
            )
            spent = time.perf_counter() - started
            self.inference_seconds += spent
            self.temporal_seconds += spent
            self.windows_scored += len(due)
            probabilities = calibrate(outputs, self.temporal_pack.card.calibration)
            for key, logit, probability in zip(due, outputs, probabilities):
                window = self._windows[key]
                window.temporal_logit, window.temporal_probability = float(logit), float(probability)
                window.since_run = 0
        for i, key in enumerate(keys):
            window = self._windows[key]
            if window.temporal_logit is None:
                continue
            scores[i].by_role["temporal"] = window.temporal_probability
            scores[i].fused = self.fusion.fuse(
                float(spatial[i]), window.temporal_probability, window.spatial_logits,
                window.temporal_logit,
            )

    def _remember_spatial(self, keys: list[TrackKey], logits: np.ndarray,
                          times: list[float] | None, judged: np.ndarray) -> None:
        """Each track's spatial judgements over the fusion's last window_s seconds of stream
        time (without stream times: its last FRAMES_WITHOUT_CLOCK judgements); a carried
        judgement (models.spatial_every) is not counted twice."""
        window = self.deep_pack.card.spatial_fusion.window_s
        for i, key in enumerate(keys):
            recent = self._recent_spatial.get(key)
            if recent is None:
                recent = self._recent_spatial[key] = collections.deque(
                    maxlen=None if times else FRAMES_WITHOUT_CLOCK)
            t = times[i] if times else 0.0
            if recent and t < recent[-1][0]:  # stream time restarted: a new stream
                recent.clear()
            if judged[i] or not recent:
                recent.append((t, float(logits[i])))
            while times and len(recent) > 1 and recent[0][0] < t - window:
                recent.popleft()

    def forget(self, key: TrackKey) -> None:
        """The track ended: drop its window, its deep looks and its recent spatial logits."""
        self._windows.pop(key, None)
        self._looks.pop(key, None)
        self._recent_spatial.pop(key, None)
        self._last_spatial.pop(key, None)
