"""Files, RTSP, RTP described by SDP, capture devices: a PyAV container per connection.

Also turns FFmpeg's exceptions into one short cause a user can act on, and hides
credentials in URLs before they reach a log line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import av.error
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.container import InputContainer
from av.video.stream import VideoStream

from agent.config.ingest import PROTOCOLS, IngestConfig, StreamConfig
from agent.ingest.connection import ConnectionLost, SourceError, register_source
from agent.redaction import redact_url

log = logging.getLogger("agent.ingest")

# Tried in this order by hwaccel="auto"; only types the loaded FFmpeg supports are tried.
_AUTO_HW_DEVICES = ("cuda", "vaapi", "videotoolbox", "d3d11va")
# Device types that failed here once, and why: later opens (reconnects, other streams) skip them.
_unusable_hw: dict[str, str] = {}
_unusable_hw_lock = threading.Lock()


@dataclass(slots=True)
class OpenedSource:
    """An open container, its video stream, and whether frames decode on a GPU."""

    container: InputContainer
    video: VideoStream
    hwaccel: str | None = None
    """The hardware device decoding this stream, None for software."""
    software_reason: str | None = None
    """Why hardware decoding was asked for but is not used (None if not asked for)."""


def open_source(stream: StreamConfig, ingest: IngestConfig) -> OpenedSource:
    """Open `stream` and find its video; raise SourceError naming the cause.

    With `ingest.hwaccel` cuda/auto, hardware decoding is tried first; any failure there
    (on a machine without a GPU PyAV raises PermissionError even when software fallback is
    allowed) means the source is opened again with software decoding; the device is then
    skipped for the rest of the process (see `hardware_unavailable`).
    """
    for device in _hw_candidates(ingest.hwaccel):
        try:
            opened = _open(stream, ingest, HWAccel(device, allow_software_fallback=True))
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure is the device's
            cause = describe_error(exc)
            if isinstance(exc, PermissionError):
                cause += " (no usable GPU or driver)"
            with _unusable_hw_lock:
                _unusable_hw[device] = cause
            continue
        if opened.video.codec_context.is_hwaccel:
            opened.hwaccel = device
        else:
            codec = opened.video.codec_context.name
            opened.software_reason = f"{device}: no hardware decoder for {codec}"
        return opened
    opened = _open(stream, ingest, None)
    if ingest.hwaccel != "none":
        opened.software_reason = hardware_unavailable(ingest.hwaccel)
    return opened


def hardware_unavailable(setting: str) -> str:
    """Why no device for `hwaccel=setting` is tried any more in this process."""
    with _unusable_hw_lock:
        causes = [f"{device}: {cause}" for device, cause in _unusable_hw.items()]
    return "; ".join(causes) or f"no {setting} hardware decoder in this FFmpeg build"


def _hw_candidates(setting: str) -> list[str]:
    if setting == "none":
        return []
    wanted = ["cuda"] if setting == "cuda" else list(_AUTO_HW_DEVICES)
    try:
        available = set(hwdevices_available())
    except Exception:  # noqa: BLE001 - an FFmpeg build without hwcontext support
        available = set()
    with _unusable_hw_lock:
        return [d for d in wanted if d in available and d not in _unusable_hw]


def container_args(stream: StreamConfig, ingest: IngestConfig) -> tuple[str, dict]:
    """The `av.open` target and keyword arguments for a source (before any hwaccel)."""
    # Only the protocols the source kind needs: a file is never fetched over the network, and
    # an SDP file can point at local UDP ports only. Per-stream options may narrow this, never
    # widen it (StreamConfig refuses that). crypto/srtp: SRTP, as some forwarders send.
    options: dict[str, str] = {"protocol_whitelist": ",".join(sorted(PROTOCOLS[stream.kind]))}
    kwargs: dict = {}
    target = stream.url
    if stream.kind == "file":
        # Always a local path, whatever its name looks like (`clip:1.mp4` is not a protocol).
        path = target.removeprefix("file://") if target.startswith("file://") else target
        target = "file:" + os.path.abspath(path)
    elif stream.kind == "rtsp":
        options["rtsp_transport"] = stream.rtsp_transport
        # Skip audio setup: Verity only looks at pictures.
        options["allowed_media_types"] = "video"
    elif stream.kind == "sdp":
        kwargs["format"] = "sdp"
        target = "file:" + os.path.abspath(target)
    elif stream.kind == "device":
        kwargs["format"] = "v4l2"
        target = target.removeprefix("v4l2://")
    options.update(stream.options)
    # The read timeout also catches a live socket gone silent (the watchdog's first line).
    read_timeout = ingest.watchdog_s if stream.kind != "file" else ingest.open_timeout_s
    kwargs["timeout"] = (ingest.open_timeout_s, read_timeout)
    # container_options, not options: PyAV would also hand `options` to every decoder.
    kwargs["container_options"] = options
    return target, kwargs


def decode_threads_for(configured: int, streams: int, cores: int | None = None) -> int:
    """Decoder threads per stream for `ingest.decode_threads` (0: FFmpeg's frame threads).

    `auto` (0) gives each stream one thread once the agent watches at least as many streams
    as there are cores: the streams then decode in parallel with each other, and frame threads
    only add work (12-16% more CPU per 720p frame, measured at 8 and 24 streams) and hold
    frames back. With fewer streams than cores, FFmpeg's frame threads use the idle ones.
    """
    if configured:
        return configured
    return 1 if streams >= (cores or os.cpu_count() or 1) else 0


def set_decode_threads(context: av.codec.context.CodecContext, threads: int) -> None:
    """Give a decoder `threads` threads (0: FFmpeg's choice of frame threads)."""
    if threads:
        context.thread_count = threads
    if threads != 1:
        # Frame threads help H.264 (encoders rarely use slices); PyAV's default is slice-only.
        context.thread_type = "AUTO"


def _open(stream: StreamConfig, ingest: IngestConfig, hwaccel: HWAccel | None) -> OpenedSource:
    target, kwargs = container_args(stream, ingest)
    if hwaccel is not None:
        kwargs["hwaccel"] = hwaccel
    started = time.monotonic()
    try:
        container = av.open(target, **kwargs)
    except Exception as exc:  # FFmpeg reports everything as exceptions
        waited = time.monotonic() - started
        cause = describe_error(exc, waited=waited, timeout=ingest.open_timeout_s)
        if hwaccel is not None and not _is_source_problem(exc, cause):
            raise  # most likely the GPU, not the source: the caller retries in software
        if stream.kind == "sdp" and cause.startswith("timed out"):
            # An SDP names ports to listen on: silence means the participant has not started
            # sending yet (or left), which is a state to report, not a failure.
            raise SourceError(
                f"waiting for RTP on the ports the SDP names (none within {ingest.open_timeout_s:g} s)",
                waiting=True,
            ) from None
        raise SourceError(cause, permanent=stream.kind == "file") from None
    if not container.streams.video:
        container.close()
        raise SourceError(
            "invalid data / not a video stream (no video track found)",
            permanent=stream.kind == "file",
        )
    video = container.streams.video[0]
    context = video.codec_context
    if context.width * context.height > ingest.max_frame_pixels:
        container.close()
        raise SourceError(
            f"{context.width}x{context.height} video is larger than ingest.max_frame_pixels "
            f"({ingest.max_frame_pixels:,} pixels)", permanent=True,
        )
    set_decode_threads(context, ingest.decode_threads)
    return OpenedSource(container=container, video=video)


_SOURCE_ERRORS = (
    av.error.ConnectionRefusedError,
    av.error.ConnectionResetError,
    av.error.FileNotFoundError,
    av.error.IsADirectoryError,
    av.error.HTTPError,
    av.error.HTTPClientError,
    av.error.InvalidDataError,
)


def _is_source_problem(exc: BaseException, cause: str) -> bool:
    """Errors that say nothing about the GPU: retrying in software would only repeat them."""
    return isinstance(exc, _SOURCE_ERRORS) or cause.startswith("timed out")


def describe_error(
    exc: BaseException, waited: float | None = None, timeout: float | None = None
) -> str:
    """One short, lower-case cause for an FFmpeg/PyAV exception (no URL: callers add it)."""
    if timeout is not None and waited is not None and waited >= timeout * 0.9:
        # FFmpeg reports its interrupt callback as "invalid data" or "exit": say what it was.
        return f"timed out after {timeout:g} s"
    if isinstance(exc, av.error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, av.error.ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, av.error.FileNotFoundError):
        return "no such file"
    if isinstance(exc, av.error.IsADirectoryError):
        return "is a directory, not a media file"
    if isinstance(exc, av.error.PermissionError):
        return "permission denied"
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        return "unauthorized (check the user name and password)"
    if isinstance(exc, av.error.HTTPForbiddenError):
        return "forbidden by the server"
    if isinstance(exc, av.error.HTTPNotFoundError):
        return "not found on the server (check the path)"
    if isinstance(exc, (av.error.HTTPClientError, av.error.HTTPError)):
        return f"server refused the request ({getattr(exc, 'strerror', None) or exc})"
    if isinstance(exc, av.error.InvalidDataError):
        return "invalid data / not a video stream"
    if isinstance(exc, (av.error.DemuxerNotFoundError, av.error.ProtocolNotFoundError)):
        return "unsupported format or protocol"
    if isinstance(exc, av.error.OSError) and getattr(exc, "errno", None) == 5:
        return "input/output error (host unreachable or name not resolved?)"
    if isinstance(exc, av.error.ExitError):
        return "interrupted"
    if isinstance(exc, av.error.FFmpegError):
        return (exc.strerror or type(exc).__name__).lower()
    return f"{type(exc).__name__}: {exc}"


def nominal_fps(video: VideoStream) -> float | None:
    """The stream's frame rate if it looks like one (an RTP stream with no rate information
    reports its 90 kHz clock instead)."""
    for rate in (video.average_rate, video.guessed_rate):
        if rate and 0 < float(rate) <= 240:
            return float(rate)
    return None


def probe_source(stream: StreamConfig, ingest: IngestConfig | None = None) -> tuple[bool, str]:
    """Open a source and decode one frame, for a quick "can I open this URL" check.

    Returns (True, e.g. "320x240 h264 at 15 fps") or (False, "<redacted url>: <cause>");
    never raises for a bad source. Takes at most about open_timeout_s + watchdog_s.
    """
    ingest = ingest or IngestConfig()
    where = redact_url(stream.url)
    try:
        opened = open_source(stream, ingest)
    except SourceError as exc:
        return False, f"{where}: {exc.cause}"
    container, video = opened.container, opened.video
    limit = container.read_timeout
    deadline = time.monotonic() + limit
    asked = time.monotonic()
    try:
        for packet in container.demux(video):
            for frame in packet.decode():
                rate = nominal_fps(video)
                fps = f" at {rate:.3g} fps" if rate else ""
                gpu = f", decoded with {opened.hwaccel}" if opened.hwaccel else ""
                codec = video.codec_context.name
                return True, f"{frame.width}x{frame.height} {codec}{fps}{gpu}"
            asked = time.monotonic()
            if asked > deadline:
                return False, f"{where}: no frame decoded within {limit:g} s"
        return False, f"{where}: opened, but no frame decoded"
    except Exception as exc:  # noqa: BLE001 - a probe reports, never raises
        waited = time.monotonic() - asked
        if waited >= 0.9 * limit:
            return False, f"{where}: no data for {limit:g} s"
        return False, f"{where}: {describe_error(exc)}"
    finally:
        container.close()


class PyAVConnection:
    """`Connection` over a PyAV container: demux the video stream, decode, skip bad packets."""

    ended_by_peer = False

    def __init__(self, opened: OpenedSource, watchdog_s: float | None) -> None:
        self.opened = opened
        self._watchdog_s = watchdog_s
        video = opened.video
        self.fps = nominal_fps(video)
        self.width = video.codec_context.width or None
        self.height = video.codec_context.height or None
        self.hwaccel = opened.hwaccel
        self.software_reason = opened.software_reason

    def frames(self, on_corrupt: Callable[[str], None]) -> Iterator[av.VideoFrame | None]:
        container, video = self.opened.container, self.opened.video
        asked = time.monotonic()  # when the pending read started
        packets = 0
        try:
            for packet in container.demux(video):
                packets += 1
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    on_corrupt(describe_error(exc))
                    decoded = []
                yield from decoded
                if not decoded:
                    yield None
                asked = time.monotonic()
        except av.error.FFmpegError as exc:
            waited = time.monotonic() - asked
            if self._watchdog_s is not None and waited >= 0.9 * container.read_timeout:
                raise ConnectionLost(
                    f"no data for {self._watchdog_s:g} s (watchdog)", silent=packets == 0
                ) from None
            raise ConnectionLost(f"read error: {describe_error(exc)}") from None

    def close(self) -> None:
        self.opened.container.close()


def _open_pyav(stream: StreamConfig, ingest: IngestConfig) -> PyAVConnection:
    watchdog = None if stream.kind == "file" else ingest.watchdog_s
    return PyAVConnection(open_source(stream, ingest), watchdog)


for _kind in ("file", "rtsp", "sdp", "device"):
    register_source(_kind, _open_pyav)
