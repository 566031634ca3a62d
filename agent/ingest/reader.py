"""`StreamReader`: one decode thread per stream, feeding a bounded queue of frames."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

import av

from agent.config.ingest import IngestConfig, StreamConfig
from agent.ingest import interrupt
from agent.ingest.connection import Connection, ConnectionLost, SourceError, open_connection
from agent.ingest.frames import Frame
from agent.ingest.queues import FrameQueue
from agent.ingest.timeline import FrameRateCap, RealtimePacer, StreamClock
from agent.redaction import redact_url

log = logging.getLogger("agent.ingest")

StreamState = Literal[
    "connecting", "waiting", "running", "reconnecting", "ended", "failed", "stopped"
]
"""waiting: the source is reachable but nobody sends yet (a participant who has not joined)."""
_TERMINAL: frozenset[str] = frozenset({"ended", "failed", "stopped"})


@dataclass(slots=True)
class StreamStats:
    """A snapshot of one reader's counters and state (a copy: safe to keep and compare)."""

    stream_id: str
    state: StreamState = "connecting"
    decoded: int = 0
    """Frames decoded (every frame, including those the frame-rate cap skips)."""
    delivered: int = 0
    """Frames put in the queue (converted to BGR when analysed)."""
    skipped: int = 0
    """Frames decoded but not queued, because of the frame-rate cap."""
    dropped: int = 0
    """Queued frames evicted unread because the queue was full (live sources only)."""
    corrupt: int = 0
    """Packets that failed to decode and were skipped."""
    reconnects: int = 0
    """Times the source was opened again after the first attempt."""
    segment: int = 0
    """Current connection number (see Frame.segment)."""
    last_error: str | None = None
    """The most recent failure, even if the stream recovered since."""
    fps: float | None = None
    """The source's nominal frame rate, once known."""
    width: int | None = None
    height: int | None = None
    hwaccel: str | None = None
    """Hardware decoder in use (e.g. "cuda"), None for software decoding."""
    decode_s: float = 0.0
    """CPU time of the decode thread reading and decoding (every frame, admitted or not;
    FFmpeg's own frame threads not included)."""


class StreamReader:
    """Decodes one source on a daemon thread and queues frames for the analysis stage.

    Every frame is decoded; only those admitted by the frame-rate cap are queued (and converted
    to BGR when the analysis reads them). Live sources (and realtime files) never block: a full queue drops its oldest
    frame. Plain files block instead, so every admitted frame is analysed. Live sources
    reconnect with exponential backoff; files end at EOF (or start over with `loop`).

    `wakeup`, when given, is set whenever a frame is queued or the reader finishes, so one
    consumer can wait on many readers.
    """

    def __init__(
        self,
        stream: StreamConfig,
        ingest: IngestConfig,
        wakeup: threading.Event | None = None,
    ) -> None:
        self.stream = stream
        self.ingest = ingest
        self.stream_id: str = stream.id or "stream"
        self._where = redact_url(stream.url)
        self._wakeup = wakeup
        self._queue: FrameQueue[Frame] = FrameQueue(ingest.queue_size, drop_oldest=stream.is_live)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stats = StreamStats(stream_id=self.stream_id)
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._clock = StreamClock()
        self._cap = FrameRateCap(ingest.analysis_fps)
        self._pacer = RealtimePacer() if stream.kind == "file" and stream.realtime else None
        self._segment = -1
        self._told_software = False
        self._reached_limit = False  # stream.max_seconds of stream time delivered

    # -- public interface -------------------------------------------------------------

    def start(self) -> None:
        """Start the decode thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"stream {self.stream_id}: reader already started")
        interrupt.install()
        self._thread = threading.Thread(
            target=self._run, name=f"ingest-{self.stream_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop decoding, drop queued frames and close the source; waits up to `timeout` s.

        A blocking open or read is aborted at once (FFmpeg's interrupt callback); should
        that ever fail, the thread still ends within the open/read timeout on its own.
        """
        self._stop.set()
        self._queue.close(discard=True)
        with self._lock:
            if self._stats.state not in _TERMINAL:
                self._stats.state = "stopped"
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "stream %s: decode thread still busy %.1f s after stop; it will exit "
                    "when FFmpeg's timeout fires",
                    self.stream_id,
                    timeout,
                )
        self._notify()

    def get(self, timeout: float | None = 0.0) -> Frame | None:
        """The next frame, waiting up to `timeout` seconds (None: until a frame or the end)."""
        return self._queue.get(timeout)

    @property
    def finished(self) -> bool:
        """True once no more frames will ever come: ended and drained, failed, or stopped."""
        return (self._stop.is_set() or self._done.is_set()) and len(self._queue) == 0

    @property
    def failed(self) -> bool:
        """True when the source failed permanently (see `error`)."""
        with self._lock:
            return self._stats.state == "failed"

    @property
    def error(self) -> str | None:
        """Why the source failed permanently, in plain words (None unless failed)."""
        with self._lock:
            return self._error

    @property
    def stats(self) -> StreamStats:
        """A consistent copy of the counters and state (safe from any thread)."""
        with self._lock:
            stats = dataclasses.replace(self._stats)
        return stats

    @property
    def alive(self) -> bool:
        """True while the decode thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- decode thread ----------------------------------------------------------------

    def _run(self) -> None:
        interrupt.register_current_thread(self._stop)
        try:
            if self.stream.kind == "file":
                self._run_file()
            else:
                self._run_live()
        except Exception as exc:  # a bug here must not end the thread silently
            log.exception("stream %s (%s): decode thread crashed", self.stream_id, self._where)
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._queue.close()
            self._done.set()
            self._notify()

    def _run_file(self) -> None:
        while not self._stop.is_set():
            try:
                connection = open_connection(self.stream, self.ingest)
            except SourceError as exc:
                log.error("stream %s (%s): %s", self.stream_id, self._where, exc.cause)
                self._fail(f"{self._where}: {exc.cause}")
                return
            try:
                self._begin_segment(connection, "loop")
                self._play(connection, watchdog=False)
            except ConnectionLost as exc:
                if self._stop.is_set():
                    return
                log.error("stream %s (%s): %s", self.stream_id, self._where, exc)
                self._fail(f"{self._where}: {exc}")
                return
            finally:
                connection.close()
            if self._stop.is_set() or self._reached_limit or not self.stream.loop:
                break
        self._set_state("ended")

    def _run_live(self) -> None:
        ingest = self.ingest
        worked = False  # delivered at least one frame, ever
        failures = 0  # consecutive attempts that produced no frame
        waits = 0  # backoff steps since the last frame
        while not self._stop.is_set():
            decoded_before = self._stats.decoded  # only this thread writes it
            hung_up = False
            asked = time.monotonic()
            try:
                connection = open_connection(self.stream, ingest)
            except SourceError as exc:
                if exc.waiting:  # nobody sends yet: wait on, no failure counted
                    # Openers that wait themselves (WHIP, SDP) return late; one that asks a
                    # server (WHEP) returns at once and must not be asked again right away.
                    asked_for = time.monotonic() - asked
                    self._wait_for_sender(exc.cause, max(0.05, ingest.reconnect_initial_s - asked_for))
                    continue
                cause = exc.cause
            else:
                try:
                    self._begin_segment(connection, "reconnect")
                    self._play(connection, watchdog=True)
                    cause = "connection closed by the server (end of stream)"
                except ConnectionLost as exc:
                    if exc.silent and self.stream.kind == "sdp":
                        # The SDP names ports to listen on: silence from the first packet on
                        # means the participant has not started sending (or has left).
                        self._wait_for_sender(f"nobody sends RTP yet ({exc})")
                        continue
                    cause = str(exc)
                finally:
                    connection.close()
                hung_up = connection.ended_by_peer
            if self._stop.is_set():
                return
            if self._reached_limit or (hung_up and self.stream.end_when_sender_leaves):
                self._set_state("ended")
                return
            if hung_up:  # the participant left; the next one may join
                log.info("stream %s: the sender hung up; waiting for the next", self.stream_id)
                worked, failures, waits = True, 0, 0
                self._wait_for_sender("the sender hung up")
                continue
            if self._stats.decoded > decoded_before:
                worked, failures, waits = True, 0, 0
            else:
                failures += 1
            limit = ingest.reconnect_attempts if worked else (ingest.connect_attempts or None)
            with self._lock:
                self._stats.last_error = cause
            if limit is not None and failures >= limit:
                what = ("reconnect attempt" if worked else "attempt") + (
                    "s" if failures != 1 else ""
                )
                verdict = f"gave up after {failures} {what}" if limit else "reconnect_attempts is 0"
                log.error("stream %s (%s): %s; %s", self.stream_id, self._where, cause, verdict)
                self._fail(f"{self._where}: {cause} ({verdict})")
                return
            delay = min(ingest.reconnect_initial_s * 2**waits, ingest.reconnect_max_s)
            waits += 1
            tries = f" (attempt {failures + 1} of {limit})" if limit else ""
            log.warning(
                "stream %s (%s): %s; retrying in %.3g s%s",
                self.stream_id,
                self._where,
                cause,
                delay,
                tries,
            )
            self._set_state("reconnecting" if worked else "connecting")
            if self._stop.wait(delay):
                return
            with self._lock:
                self._stats.reconnects += 1

    def _wait_for_sender(self, why: str, pause: float = 0.05) -> None:
        with self._lock:
            if self._stats.state != "waiting":
                log.info("stream %s (%s): %s", self.stream_id, self._where, why)
        self._set_state("waiting")
        self._stop.wait(pause)

    def _begin_segment(self, opened: Connection, restart: Literal["reconnect", "loop"]) -> None:
        fps = opened.fps
        if opened.software_reason and not self._told_software:
            self._told_software = True
            log.warning(
                "stream %s: hwaccel=%s requested, decoding in software (%s)",
                self.stream_id,
                self.ingest.hwaccel,
                opened.software_reason,
            )
        self._segment += 1
        if self._segment > 0:
            self._clock.new_segment(restart)
        self._clock.nominal_fps = fps
        with self._lock:
            self._stats.segment = self._segment
            self._stats.fps = fps
            self._stats.width = opened.width or self._stats.width
            self._stats.height = opened.height or self._stats.height
            self._stats.hwaccel = opened.hwaccel

    def _play(self, connection: Connection, watchdog: bool) -> None:
        """Decode until the source ends or stop; raise ConnectionLost on a read error or the
        watchdog (no frame decoded for `ingest.watchdog_s`)."""
        limit = self.ingest.watchdog_s
        last_frame = time.monotonic()
        if watchdog:
            interrupt.set_deadline(last_frame + limit)
        # CPU time of this thread: waiting on a socket or a paced file costs nothing.
        asked = time.thread_time()
        try:
            for frame in connection.frames(self._count_corrupt):
                if self._stop.is_set():
                    return
                self._stats.decode_s += time.thread_time() - asked  # only this thread writes
                now = time.monotonic()
                if frame is None:
                    if watchdog and now - last_frame > limit:
                        raise ConnectionLost(f"no frame decoded for {limit:g} s (watchdog)")
                    asked = time.thread_time()
                    continue
                last_frame = now
                if watchdog:
                    interrupt.set_deadline(now + limit)
                self._handle(frame, now)
                if self._stop.is_set() or self._reached_limit:
                    return
                asked = time.thread_time()
        finally:
            interrupt.set_deadline(None)

    def _count_corrupt(self, cause: str) -> None:
        with self._lock:
            self._stats.corrupt += 1
            count = self._stats.corrupt
        if count <= 3 or count % 100 == 0:
            log.info(
                "stream %s: skipped a packet that does not decode (%s; %d so far)",
                self.stream_id,
                cause,
                count,
            )

    def _handle(self, frame: av.VideoFrame, wall: float) -> None:
        """Place a decoded frame on the stream clock; queue it if the cap allows."""
        if frame.width * frame.height > self.ingest.max_frame_pixels:  # resized mid-stream
            raise ConnectionLost(
                f"a {frame.width}x{frame.height} frame is larger than ingest.max_frame_pixels "
                f"({self.ingest.max_frame_pixels:,} pixels)"
            )
        pts = frame.time
        stream_time = self._clock.place(pts, wall)
        limit = self.stream.max_seconds
        if limit is not None and stream_time >= limit:
            self._reached_limit = True
            return
        with self._lock:
            index = self._stats.decoded
            self._stats.decoded += 1
            if self._stats.state != "running" and self._stats.state not in _TERMINAL:
                self._stats.state = "running"
            if self._stats.width != frame.width or self._stats.height != frame.height:
                self._stats.width, self._stats.height = frame.width, frame.height
        if not self._cap.admit(stream_time, self._clock.frame_duration):
            with self._lock:
                self._stats.skipped += 1
            return
        if self._pacer is not None:
            delay = self._pacer.delay(stream_time, time.monotonic())
            if delay > 0 and self._stop.wait(delay):
                return
        item = Frame(
            stream_id=self.stream_id,
            index=index,
            time=stream_time,
            pts=pts,
            wall_time=time.time(),
            segment=self._segment,
            decoded=frame,  # converted to BGR when analysed: a dropped frame never is
        )
        evicted = self._queue.put(item)  # blocks for plain files (backpressure)
        if evicted is None:
            return  # stopped meanwhile
        with self._lock:
            self._stats.delivered += 1
            self._stats.dropped += evicted
        self._notify()

    # -- helpers ----------------------------------------------------------------------

    def _set_state(self, state: StreamState) -> None:
        with self._lock:
            if self._stats.state not in _TERMINAL:
                self._stats.state = state

    def _fail(self, error: str) -> None:
        with self._lock:
            if self._stats.state == "stopped":
                return
            self._stats.state = "failed"
            self._stats.last_error = error
            self._error = error

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def __repr__(self) -> str:
        return f"<StreamReader {self.stream_id} {self._where} {self.stats.state}>"
