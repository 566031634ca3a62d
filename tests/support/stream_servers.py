"""Fixtures: stream_servers. Real stream servers on 127.0.0.1 for ingest tests.

- `rtsp_server`: factory for GStreamer RTSP servers (tests/support/rtsp_server.py under the
  system Python) serving an H.264 mp4, or a live test pattern, at rtsp://127.0.0.1:<port>/<path>.
  A server can be killed (SIGKILL, like a crashed camera) and started again on the same port.
- `rtp_sender`: factory for Debian's ffmpeg re-encoding a clip to RTP on a free UDP port,
  with the matching .sdp file (what mediasoup/Janus hand a sidecar).

Every process started here is killed at the end of the test that started it.
"""

from __future__ import annotations

import ctypes
import functools
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_udp_port_pair() -> int:
    """An even UDP port whose successor is free too (RTP on n, RTCP on n + 1)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1] & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of UDP ports")


@functools.cache
def gstreamer_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the RTSP test server needs the system Python)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "missing = [e for e in ('filesrc', 'qtdemux', 'h264parse', 'rtph264pay', 'videotestsrc', 'x264enc')"
        " if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
    )
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {SYSTEM_PYTHON}: {exc}"
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        return (
            "GStreamer RTSP server bindings missing (apt-get install python3-gi "
            f"gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{{base,good,bad,ugly}}): {last_line}"
        )
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()}"
    return None


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills the child if the test process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux/glibc: fixtures' own cleanup still applies
        pass


def _spawn(command: list[str], **kwargs) -> subprocess.Popen:
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(command, preexec_fn=preexec, **kwargs)  # noqa: PLW1509


def _stop_process(process: subprocess.Popen, grace_s: float = 3.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace_s)


class RtspServer:
    """One GStreamer RTSP server process; `url` stays valid across kill() and start()."""

    def __init__(self, clip: Path | None, path: str, port: int, fps: int) -> None:
        self.clip = clip
        self.path = path if path.startswith("/") else f"/{path}"
        self.port = port
        self.fps = fps
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        """The server's last lines of output (for failure messages)."""

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout_s: float = 15.0) -> RtspServer:
        """Start (or restart) the server and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("RTSP server already running")
        command = [
            SYSTEM_PYTHON,
            str(RTSP_SERVER_SCRIPT),
            "--port",
            str(self.port),
            "--path",
            self.path,
            "--fps",
            str(self.fps),
        ]
        if self.clip is not None:
            command += ["--file", str(self.clip)]
        deadline = time.monotonic() + timeout_s
        while True:
            self.process = _spawn(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            line = self._first_line(deadline)
            if line.startswith("READY"):
                # Keep reading its output so a chatty server never blocks on a full pipe.
                threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
                return self
            _stop_process(self.process)
            # The port may linger for a moment after a kill: try again until the deadline.
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start on port {self.port}: {line!r}")
            time.sleep(0.2)

    def _first_line(self, deadline: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                return self.process.stdout.readline().strip()
            if self.process.poll() is not None:
                return f"exited with {self.process.returncode}"
        return "timed out waiting for READY"

    def _drain(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line.rstrip())
            del self.output[:-50]

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing its sessions (a crashed camera)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is sent or answered (a hung camera)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()  # a stopped process would hold SIGTERM until continued
            _stop_process(self.process)


RtspServerFactory = Callable[..., RtspServer]


@pytest.fixture
def rtsp_server() -> Iterator[RtspServerFactory]:
    """Factory: `rtsp_server(clip=None, path="/stream", port=None, fps=15)` -> a started
    RtspServer. clip=None serves a live test pattern (never ends); a clip plays once."""
    reason = gstreamer_rtsp_missing()
    if reason:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def start(
        clip: Path | str | None = None,
        path: str = "/stream",
        port: int | None = None,
        fps: int = 15,
    ) -> RtspServer:
        server = RtspServer(Path(clip) if clip else None, path, port or free_tcp_port(), fps)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


class RtpSender:
    """Debian's ffmpeg re-encoding a clip (looped, in real time) to RTP on 127.0.0.1.

    `sdp_path` describes the stream; stop() and start() again reuse the same port and file,
    like a forwarder that drops and comes back.
    """

    def __init__(self, command: list[str], sdp_path: Path, port: int, log_path: Path) -> None:
        self.command = command
        self.sdp_path = sdp_path
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> RtpSender:
        """Start ffmpeg and wait until it has written the complete SDP file."""
        self.sdp_path.unlink(missing_ok=True)
        with open(self.log_path, "a") as log:
            self.process = _spawn(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        previous = None
        while True:
            text = self.sdp_path.read_text() if self.sdp_path.exists() else ""
            if "a=rtpmap" in text and text == previous:  # complete: unchanged for 50 ms
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ffmpeg RTP sender did not start: {self.log_path.read_text()}")
            previous = text
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)


RtpSenderFactory = Callable[..., RtpSender]

_RTP_ENCODERS = {
    # -bf 0: RTP carries frames in decode order; zerolatency keeps the sender from buffering.
    "libx264": ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0"],
    "libvpx": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
}


@pytest.fixture
def rtp_sender(tmp_path: Path) -> Iterator[RtpSenderFactory]:
    """Factory: `rtp_sender(clip, codec="libx264"|"libvpx", gop=15)` -> a running RtpSender
    whose .sdp file is written. ffmpeg loops the clip until the test ends."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed (apt-get install ffmpeg)")
    senders: list[RtpSender] = []

    def start(clip: Path | str, codec: str = "libx264", gop: int = 15) -> RtpSender:
        port = free_udp_port_pair()
        sdp_path = tmp_path / f"rtp-{port}.sdp"
        command = [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(clip),
            "-an",
            *_RTP_ENCODERS[codec],
            "-g",
            str(gop),
            "-f",
            "rtp",
            "-sdp_file",
            str(sdp_path),
            f"rtp://127.0.0.1:{port}",
        ]
        sender = RtpSender(command, sdp_path, port, tmp_path / f"rtp-{port}.log")
        senders.append(sender)
        return sender.start()

    try:
        yield start
    finally:
        for sender in senders:
            sender.stop()


def silent_tcp_server() -> tuple[socket.socket, int]:
    """A listening socket that accepts connections (backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Port of a TCP server that accepts connections and never says a word (a hung camera)."""
    sock, port = silent_tcp_server()
    try:
        yield port
    finally:
        sock.close()


__all__ = [
    "RtpSender",
    "RtspServer",
    "free_tcp_port",
    "free_udp_port_pair",
    "gstreamer_rtsp_missing",
]
