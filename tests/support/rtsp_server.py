"""A small RTSP server for tests: serves one H.264 mp4 (or a live test pattern) on 127.0.0.1.

Runs under the SYSTEM Python (/usr/bin/python3), which has GStreamer's introspection bindings;
the project's virtualenv does not. Prints `READY <port>` on stdout once it accepts connections
and runs until SIGTERM/SIGINT (or SIGKILL, which tests use to simulate a crashed camera).

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --path /cam --file clip.mp4
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer


def file_pipeline(path: str) -> str:
    # config-interval=1 repeats SPS/PPS so a client joining mid-stream can start decoding.
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'( filesrc location="{location}" ! qtdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def test_pattern_pipeline(width: int, height: int, fps: int) -> str:
    # A live source that never ends: for tests that need a stream longer than any clip.
    return (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
        f"framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 "
        f"key-int-max={fps} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/stream", help="mount point, e.g. /cam")
    parser.add_argument("--file", help="H.264 mp4 to serve (default: a live test pattern)")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--size", default="320x240", help="test pattern size")
    parser.add_argument("--fps", type=int, default=15, help="test pattern frame rate")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    if args.file:
        factory.set_launch(file_pipeline(args.file))
    else:
        width, height = (int(v) for v in args.size.split("x"))
        factory.set_launch(test_pattern_pipeline(width, height, args.fps))
    # Shared: every client watches the same timeline, like a camera.
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)

    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.address}:{args.port}", flush=True)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
