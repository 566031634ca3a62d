"""Fixtures: media. Synthetic clips written with PyAV (moving content, no B-frames by default)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def synthetic_image(index: int, width: int, height: int, fps: float) -> np.ndarray:
    """An RGB picture that changes every frame: a gradient that scrolls and a square that moves."""
    t = index / fps
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = ((xs + 40.0 * t) % 256).astype(np.uint8)
    image[..., 1] = ((ys + 25.0 * t) % 256).astype(np.uint8)
    image[..., 2] = 96
    side = max(8, min(width, height) // 5)
    x = int((width - side) * (0.5 + 0.5 * np.sin(2.0 * t)))
    y = int((height - side) * (0.5 + 0.5 * np.cos(1.3 * t)))
    image[y : y + side, x : x + side] = (255, 255, 255)
    return image


def write_test_clip(
    path: str | Path,
    seconds: float = 2.0,
    fps: float = 30.0,
    width: int = 320,
    height: int = 240,
    codec: str = "libx264",
    gop: int | None = None,
    bframes: int = 0,
) -> Path:
    """Write a clip of `seconds * fps` frames; the container follows the suffix (.mp4, .webm, .mkv).

    Frame i has pts i / fps exactly (time base 1/fps for integer rates), so tests can compare
    decoded timestamps with what was written. `gop` defaults to one keyframe per second.
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    frames = round(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        time_base = 1 / rate  # the muxer may change stream.time_base once the header is out
        stream.time_base = time_base
        stream.codec_context.gop_size = gop or max(1, round(fps))
        if codec == "libx264":
            stream.codec_context.max_b_frames = bframes
            stream.options = {"preset": "ultrafast", "bf": str(bframes)}
        elif codec.startswith("libvpx"):
            stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "1M"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synthetic_image(i, width, height, fps), "rgb24")
            frame.pts = i
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_corrupt_file(path: str | Path, size: int = 64 * 1024, seed: int = 1) -> Path:
    """Random bytes under a video file name: what a broken download or a wrong file looks like."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


ClipFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipFactory:
    """Factory: `make_clip(seconds=2, fps=30, width=320, height=240, codec=..., suffix=".mp4")`.

    Clips are cached per parameter set for the whole session (encoding costs CPU here).
    """
    folder = tmp_path_factory.mktemp("clips")
    cache: dict[tuple, Path] = {}

    def make(suffix: str = ".mp4", **params) -> Path:
        key = (suffix, *sorted(params.items()))
        if key not in cache:
            name = "clip-" + "-".join(f"{k}{v}" for k, v in sorted(params.items())) + suffix
            cache[key] = write_test_clip(folder / name, **params)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def clip_30fps(make_clip: ClipFactory) -> Path:
    """3 s, 30 fps, 320x240 H.264 in mp4 (90 frames)."""
    return make_clip(seconds=3.0, fps=30.0)


def corrupt_packets(
    source: str | Path, target: str | Path, packets: list[int], seed: int = 0
) -> Path:
    """Copy a clip, overwriting the payload of the given video packets (by decode order) with
    random bytes: the container stays valid, those packets no longer decode."""
    with av.open(str(source)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None]
    data = bytearray(Path(source).read_bytes())
    rng = np.random.default_rng(seed)
    for i in packets:
        pos, size = spans[i]
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    target = Path(target)
    target.write_bytes(bytes(data))
    return target
