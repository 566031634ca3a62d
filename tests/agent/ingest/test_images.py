"""Pictures too large to decode safely are refused from their header, before decoding."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

from agent.config.ingest import StreamConfig
from agent.ingest.images import ImageError, read_image
from tests.agent.ingest.helpers import wait_for


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose (valid, CRC-checked) header claims width x height; almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(data.tobytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("make", [png_claiming, jpeg_claiming])
def test_a_header_claiming_65535_squared_is_refused_without_decoding(make, tmp_path):
    path = tmp_path / "bomb.img"
    path.write_bytes(make(65535, 65535))
    started = time.monotonic()
    with pytest.raises(ImageError, match=r"65535x65535 image is larger than ingest.max_frame_pixels"):
        read_image(path, 40_000_000)
    assert time.monotonic() - started < 1.0


def test_a_real_image_over_the_limit_is_refused_and_one_under_it_is_read(tmp_path):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((1200, 1000, 3), np.uint8))
    with pytest.raises(ImageError, match="1000x1200"):
        read_image(path, 1_000_000)
    assert read_image(path, 1_200_000).shape == (1200, 1000, 3)


def test_not_an_image_says_so(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(path, 40_000_000)


def test_verity_score_refuses_the_bomb_with_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(65535, 65535))
    result = subprocess.run([sys.executable, "-m", "agent.cli", "score", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "larger than ingest.max_frame_pixels" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_video_larger_than_the_limit_is_refused_at_open(clip_30fps, start_reader):
    reader = start_reader(StreamConfig(url=str(clip_30fps)), max_frame_pixels=320 * 240 - 1)
    assert wait_for(lambda: reader.failed, 10), reader.stats
    assert "320x240 video is larger than ingest.max_frame_pixels" in reader.error
