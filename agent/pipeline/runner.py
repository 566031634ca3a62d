"""The agent's main loop: many streams in, one shared detector and model, events out.

Each stream decodes on its own thread (agent.ingest.StreamReader). This loop takes at most
one ready frame per stream per round, runs detection/tracking/alignment per frame, scores the
round's face crops from all streams in one batch, updates each track's rolling score, and
hands the resulting events to listeners (the Redis publisher, collectors for `score`/`eval`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from agent.config import IngestConfig, StreamConfig, VerityConfig
from agent.ingest import Frame, StreamReader, decode_threads_for
from agent.pipeline.analyzer import FaceObservation, StreamAnalyzer
from agent.pipeline.scorer import FaceScorer, FrameScore
from agent.pipeline.tracks import EndReason, TrackBook, TrackEvent, TrackState
from agent.scoring.rolling import calibration_mismatch, changed_settings
from engines.faces import FaceDetector, create_detector
from engines.faces.detectors.pool import detector_pool
from engines.ood import REASON as OOD_REASON
from engines.registry import ModelPack

log = logging.getLogger("agent.pipeline")


class EventListener(Protocol):
    def on_event(self, event: TrackEvent) -> None: ...


@dataclass
class StreamSlot:
    config: StreamConfig
    reader: StreamReader
    analyzer: StreamAnalyzer
    book: TrackBook
    frames_analysed: int = 0
    faces_observed: int = 0
    lag_sum: float = 0.0
    lag_max: float = 0.0
    lags: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    """Recent decode-to-analysis delays (s), for percentiles."""
    frames_failed: int = 0
    """Frames whose analysis raised (logged and skipped; the stream goes on)."""
    done: bool = False


@dataclass
class PipelineStats:
    rounds: int = 0
    frames_analysed: int = 0
    faces_observed: int = 0
    faces_scored: int = 0
    faces_unknown: int = 0
    events: int = 0
    scoring_s: float = 0.0
    """Time in the models and their fusion."""
    rolling_s: float = 0.0
    """Time updating track scores (rolling score, hysteresis)."""
    publish_s: float = 0.0
    """Time in event listeners: alert documents, evidence images, handing to the sink."""
    started: float = field(default_factory=time.monotonic)


_calibration_warnings: set[tuple[str, tuple[str, ...]]] = set()
"""(pack, changed settings) already warned about: `verity eval` builds a pipeline per file."""


def _warn_if_calibrated_otherwise(config: VerityConfig, pack: ModelPack) -> None:
    """The card's alert threshold holds a false-alarm rate for the rolling settings and quality
    gate it was calibrated with (the gate decides which faces are scored at all); other settings
    are allowed, but the user is told (once per process) that the rate no longer holds."""
    threshold = pack.card.alert_threshold
    if threshold is None:
        return
    changed = calibration_mismatch(threshold.measured.get("rolling", {}), config.scoring,
                                   config.ingest.analysis_fps)
    changed += changed_settings(threshold.measured.get("quality", {}),
                                config.faces.quality.model_dump(), prefix="faces.quality.")
    if "deep" in threshold.measured:  # the rule and sampling shape the deep pack's score
        recorded, now = threshold.measured["deep"], config.models.deep_settings()
        changed += [f"models.{k}: {recorded[k]} -> {v}" for k, v in now.items()
                    if k in recorded and recorded[k] != v]
    if changed and (pack.id, tuple(changed)) not in _calibration_warnings:
        _calibration_warnings.add((pack.id, tuple(changed)))
        log.warning(
            "%s's alert threshold %.4f was calibrated for %g false alerts per stream-hour with "
            "other scoring settings (%s): that rate no longer holds; run verity calibrate with "
            "this config, or set scoring.threshold", pack.id, threshold.value,
            threshold.target_alerts_per_hour, "; ".join(changed))


class Pipeline:
    def __init__(
        self,
        config: VerityConfig,
        *,
        listeners: Iterable[EventListener] = (),
        detector: FaceDetector | None = None,
        scorer: FaceScorer | None = None,
        on_observations: Callable[[list[FaceObservation], list[FrameScore | None]], None]
        | None = None,
        frame_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        keep_finished: int | None = None,
    ) -> None:
        self.config = config
        self.keep_finished = keep_finished
        """Ended tracks remembered per stream (None: all; a long-running agent bounds it)."""
        self.scorer = scorer or FaceScorer(config.models)
        # A caller's detector may not be thread-safe: with it, frames are observed one by one.
        self.observe_threads = config.faces.threads if detector is None else 1
        self._owns_detector = detector is None
        if detector is not None:
            self.detector = detector
        elif self.observe_threads > 1:
            self.detector = detector_pool(lambda: create_detector(config.faces.detector),
                                          self.observe_threads)
        else:
            self.detector = create_detector(config.faces.detector)
        self._observers: ThreadPoolExecutor | None = None
        self.threshold = config.scoring.threshold or self.scorer.threshold
        if config.scoring.threshold is None:
            _warn_if_calibrated_otherwise(config, self.scorer.decision_pack)
        self.listeners = list(listeners)
        self.on_observations = on_observations
        """Called every round with the analysed faces and each one's scores (None: refused by
        the quality gate or out of distribution)."""
        self.frame_transform = frame_transform
        """Applied to every frame's image before analysis (evaluation perturbations)."""
        self.stats = PipelineStats()
        self.wakeup = threading.Event()
        self._slots: dict[str, StreamSlot] = {}
        self._lock = threading.Lock()
        self._running = False
        self._removals: collections.deque[tuple[str, EndReason, threading.Event]] = (
            collections.deque()
        )
        self.failed_streams: dict[str, str] = {}
        for stream in config.streams:
            self.add_stream(stream)

    # -- streams ---------------------------------------------------------------------------
    def add_stream(self, stream: StreamConfig, *, start: bool = False) -> StreamSlot:
        """Watch one more stream; safe from any thread while `run` goes on (the next round
        picks it up). `start` starts its reader now (streams added before `run` start with it)."""
        with self._lock:
            if stream.id in self._slots:
                raise ValueError(f"stream id {stream.id!r} is already being watched")
            slot = StreamSlot(
                config=stream,
                reader=StreamReader(stream, self._ingest_for(len(self._slots) + 1),
                                    wakeup=self.wakeup),
                analyzer=StreamAnalyzer(
                    stream.id, self.config.faces, self.detector, self.scorer.align_spec
                ),
                book=TrackBook(stream.id, self.config.scoring, self.threshold,
                               keep_finished=self.keep_finished),
            )
            self._slots[stream.id] = slot
        if start:
            slot.reader.start()
        return slot

    def _ingest_for(self, watched: int) -> IngestConfig:
        """The ingest settings a new reader gets: `decode_threads` auto resolved against the
        streams watched (the configured list, or more once streams are added at run time)."""
        ingest = self.config.ingest
        threads = decode_threads_for(ingest.decode_threads, max(watched, len(self.config.streams)))
        if threads == ingest.decode_threads:
            return ingest
        return ingest.model_copy(update={"decode_threads": threads})

    def remove_stream(
        self, stream_id: str, reason: EndReason = "stream_ended", timeout: float = 10.0
    ) -> bool:
        """Stop watching a stream: its open tracks end (alerts get their `end`) and it leaves
        the list. Safe from any thread: while `run` goes on, the loop does it between rounds
        and this waits up to `timeout` s for that. False if no such stream."""
        done = threading.Event()
        with self._lock:
            if stream_id not in self._slots:
                return False
            queued = self._running
            if queued:
                self._removals.append((stream_id, reason, done))
        if not queued:
            self._remove_now(stream_id, reason)
            return True
        self.wakeup.set()
        done.wait(timeout)
        return True

    def _remove_now(self, stream_id: str, reason: EndReason) -> None:
        with self._lock:
            slot = self._slots.get(stream_id)
        if slot is None:
            return
        slot.reader.stop()
        if not slot.done:
            self._close_slot(slot, reason)  # while listed: the end alerts still name its source
        with self._lock:
            self._slots.pop(stream_id, None)
        if slot.config.kind == "whip":
            from agent.ingest.webrtc import inboxes

            inboxes.discard(stream_id)

    def _apply_removals(self) -> None:
        while self._removals:
            stream_id, reason, done = self._removals.popleft()
            try:
                self._remove_now(stream_id, reason)
            finally:
                done.set()

    @property
    def slots(self) -> list[StreamSlot]:
        with self._lock:
            return list(self._slots.values())

    # -- main loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, *, stay_up: bool = False) -> PipelineStats:
        """Run until `stop` is set or every stream has finished (files ended, sources failed);
        with `stay_up`, until `stop` only (streams come and go through the control API)."""
        stop = stop or threading.Event()
        with self._lock:
            self._running = True
        for slot in self.slots:
            if not slot.reader.alive and not slot.done:
                slot.reader.start()
        try:
            while not stop.is_set():
                self.wakeup.clear()
                self._apply_removals()
                frames = self._collect_round()
                if frames:
                    self.process(frames)
                    continue
                if not stay_up and all(slot.done for slot in self.slots):
                    break
                self.wakeup.wait(0.05)
        finally:
            with self._lock:
                self._running = False
            self._apply_removals()
            reason: EndReason = "shutdown" if stop.is_set() else "stream_ended"
            for slot in self.slots:
                slot.reader.stop()
                if not slot.done:
                    self._close_slot(slot, reason)
            if self._observers is not None:
                self._observers.shutdown()
                self._observers = None
        return self.stats

    def _collect_round(self) -> list[tuple[StreamSlot, Frame]]:
        frames = []
        for slot in self.slots:
            if slot.done:
                continue
            frame = slot.reader.get(0.0)
            if frame is not None:
                frames.append((slot, frame))
            elif slot.reader.finished:
                if slot.reader.failed:
                    self.failed_streams[slot.config.id] = slot.reader.error or "failed"
                    log.error("stream %s: %s", slot.config.id, slot.reader.error)
                self._close_slot(slot, "stream_ended")
                if slot.config.end_when_sender_leaves:  # its id is free for the next caller
                    self._remove_now(slot.config.id, "stream_ended")
        return frames

    def _close_slot(self, slot: StreamSlot, reason: EndReason) -> None:
        slot.done = True
        for track in slot.analyzer.finish():
            self._end_track(slot, track.id, reason)
        for track_id in list(slot.book.states):
            self._end_track(slot, track_id, reason)

    def _end_track(self, slot: StreamSlot, track_id: int, reason: EndReason) -> None:
        self.scorer.forget((slot.config.id, track_id))
        self._emit(slot.book.end(track_id, reason))

    def process(self, frames: list[tuple[StreamSlot, Frame]]) -> None:
        """One round: observe every frame, score all their crops together, update tracks."""
        self.stats.rounds += 1
        observations: list[tuple[StreamSlot, FaceObservation]] = []
        now = time.time()
        for (slot, frame), (found, ended) in zip(frames, self._observe_all(frames)):
            for track in ended:
                self._end_track(slot, track.id, "track_lost")
            observations += [(slot, obs) for obs in found]
            slot.frames_analysed += 1
            slot.faces_observed += len(found)
            lag = max(now - frame.wall_time, 0.0)
            slot.lag_sum += lag
            slot.lag_max = max(slot.lag_max, lag)
            slot.lags.append(lag)
        self.stats.frames_analysed += len(frames)
        self.stats.faces_observed += len(observations)

        scoring_started = time.perf_counter()
        judged = [i for i, (_, obs) in enumerate(observations) if obs.quality.ok]
        scores: list[FrameScore | None] = [None] * len(observations)
        if judged:
            picked = [observations[i] for i in judged]
            results = self.scorer.score(
                keys=[(slot.config.id, obs.track.id) for slot, obs in picked],
                crops=np.stack([obs.crop for _, obs in picked]),
                frames=[obs.frame.image for _, obs in picked],
                keypoints=[obs.keypoints for _, obs in picked],
                rolling=[slot.book.rolling_value(obs.track.id) for slot, obs in picked],
                steps=[slot.frames_analysed for slot, _ in picked],
                times=[obs.frame.time for _, obs in picked],
                live=[slot.config.is_live for slot, _ in picked],
            )
            for i, result in zip(judged, results):
                if result.out_of_distribution:  # the model cannot judge it: unknown, not real
                    obs = observations[i][1]
                    obs.quality = replace(obs.quality, ok=False, reasons=(*obs.quality.reasons, OOD_REASON))
                else:
                    scores[i] = result
        self.stats.scoring_s += time.perf_counter() - scoring_started
        self.stats.faces_scored += len(judged)
        self.stats.faces_unknown += sum(score is None for score in scores)
        if self.on_observations is not None:
            self.on_observations([obs for _, obs in observations], scores)

        for (slot, obs), score in zip(observations, scores):
            rolling_started = time.perf_counter()
            event = slot.book.update(
                obs.track.id,
                obs.frame.time,
                obs.box,
                (obs.frame.image.shape[1], obs.frame.image.shape[0]),
                score.by_role if score is not None else None,
                score.fused if score is not None else None,
                obs,
            )
            self.stats.rolling_s += time.perf_counter() - rolling_started
            self._emit(event)

    def _observe(self, item: tuple[StreamSlot, Frame]) -> tuple[list[FaceObservation], list]:
        slot, frame = item
        try:
            if self.frame_transform is not None:
                frame.image = self.frame_transform(frame.image)
            return slot.analyzer.observe(frame)
        except Exception:  # one bad frame (or a bug it triggers) must not stop every stream
            slot.frames_failed += 1
            if slot.frames_failed <= 3 or slot.frames_failed % 100 == 0:
                log.exception("stream %s: frame %d could not be analysed (%d so far); skipped",
                              slot.config.id, frame.index, slot.frames_failed)
            return [], []

    def _observe_all(self, frames: list[tuple[StreamSlot, Frame]]) -> list:
        """Each frame's faces and ended tracks, in order; across faces.threads threads (one
        frame per stream in a round, and each stream's analyser is touched by one thread)."""
        if self.observe_threads == 1 or len(frames) == 1:
            return [self._observe(item) for item in frames]
        if self._observers is None:
            self._observers = ThreadPoolExecutor(self.observe_threads,
                                                 thread_name_prefix="verity-faces")
        return list(self._observers.map(self._observe, frames))

    def _emit(self, event: TrackEvent | None) -> None:
        if event is None:
            return
        self.stats.events += 1
        started = time.perf_counter()
        try:
            self._notify(event)
        finally:
            self.stats.publish_s += time.perf_counter() - started

    def _notify(self, event: TrackEvent) -> None:
        for listener in self.listeners:
            try:
                listener.on_event(event)
            except Exception:  # a listener's bug must not stop the monitoring of every stream
                log.exception("event listener %s failed", type(listener).__name__)

    def stage_seconds(self) -> dict[str, float]:
        """Where the time went, by stage, over every stream so far (for `verity bench`):
        decode is the decode threads' CPU time, the rest the analysis loop's (convert: the
        analysed frames' conversion to BGR)."""
        slots = self.slots
        readers = [slot.reader.stats for slot in slots]
        followers = [slot.analyzer.follower.seconds for slot in slots]
        scorer = self.scorer
        models = scorer.spatial_seconds + scorer.temporal_seconds + scorer.deep_seconds
        return {
            "decode": sum(r.decode_s for r in readers),
            "convert": sum(slot.analyzer.convert_seconds for slot in slots),
            "detect": sum(f["detect"] for f in followers),
            "track": sum(f["track"] for f in followers),
            "align": sum(f["align"] for f in followers),
            "quality_gate": sum(slot.analyzer.quality_seconds for slot in slots),
            "spatial_model": scorer.spatial_seconds,
            "temporal_model": scorer.temporal_seconds,
            "deep_model": scorer.deep_seconds,
            "scoring_other": max(self.stats.scoring_s - models, 0.0),
            "rolling_score": self.stats.rolling_s,
            "publish": self.stats.publish_s,
        }

    def close(self) -> None:
        """Stop the observing threads and free the detectors this pipeline made (a caller's
        detector stays the caller's). Call after run() has returned."""
        if self._observers is not None:
            self._observers.shutdown(wait=True)
            self._observers = None
        if self._owns_detector:
            close = getattr(self.detector, "close", None)
            if close is not None:
                close()
            self._owns_detector = False

    # -- results -----------------------------------------------------------------------------
    def track_states(self) -> dict[str, list[TrackState]]:
        """Every track seen, finished or not, by stream."""
        return {
            slot.config.id: list(slot.book.finished) + list(slot.book.states.values())
            for slot in self.slots
        }

    def source_url(self, stream_id: str) -> str:
        stream = self.stream_config(stream_id)
        return stream.url if stream else ""

    def stream_config(self, stream_id: str) -> StreamConfig | None:
        with self._lock:
            slot = self._slots.get(stream_id)
        return slot.config if slot else None

    def slot(self, stream_id: str) -> StreamSlot | None:
        with self._lock:
            return self._slots.get(stream_id)
