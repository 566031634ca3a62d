"""File sources: capped, complete, in order, with the file's own timestamps."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import numpy as np
import pytest

from agent.config.ingest import StreamConfig
from agent.ingest import Frame
from tests.agent.ingest.helpers import collect, wait_for
from tests.support.media import corrupt_packets, write_corrupt_file


@pytest.mark.parametrize("bframes", [0, 2])
def test_file_capped_at_10fps_delivers_every_third_frame_in_order(start_reader, make_clip, bframes):
    clip = make_clip(seconds=3.0, fps=30.0, bframes=bframes)
    reader = start_reader(str(clip), analysis_fps=10)
    frames = collect(reader, timeout_s=20)

    stats = reader.stats
    assert reader.finished and stats.state == "ended" and not reader.failed
    assert stats.decoded == 90
    assert [f.index for f in frames] == list(range(0, 90, 3))
    assert stats.delivered == 30 and stats.skipped == 60 and stats.dropped == 0
    assert np.allclose([f.time for f in frames], np.arange(30) * 0.1, atol=1e-6)
    assert np.allclose([f.pts for f in frames], [i / 30 for i in range(0, 90, 3)], atol=1e-6)
    assert all(f.segment == 0 and f.stream_id == reader.stream_id for f in frames)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert (stats.fps, stats.width, stats.height) == (30.0, 320, 240)


def test_images_are_bgr_and_follow_the_content(start_reader, make_clip):
    # The synthetic clip has a constant blue channel of 96 (RGB) and red/green gradients.
    reader = start_reader(str(make_clip(seconds=1.0, fps=10.0)), analysis_fps=10)
    frames = collect(reader, timeout_s=20)
    assert len(frames) == 10
    blue = frames[0].image[..., 0].astype(float)
    assert abs(np.median(blue) - 96) < 8  # BGR order: channel 0 is blue
    assert not np.array_equal(frames[0].image, frames[5].image)  # moving content


def test_slow_consumer_gets_every_frame_of_a_file(start_reader, clip_30fps):
    # Plain files apply backpressure: a consumer slower than decoding loses nothing.
    reader = start_reader(str(clip_30fps), analysis_fps=30, queue_size=2)
    frames: list[Frame] = []
    deadline = time.monotonic() + 25
    while not reader.finished and time.monotonic() < deadline:
        frame = reader.get(timeout=0.5)
        if frame is not None:
            frames.append(frame)
            time.sleep(0.01)
    assert [f.index for f in frames] == list(range(90))
    assert reader.stats.dropped == 0 and reader.stats.state == "ended"


def test_stop_unblocks_a_file_reader_waiting_for_room(start_reader, clip_30fps):
    reader = start_reader(str(clip_30fps), analysis_fps=30, queue_size=1)
    assert wait_for(lambda: reader.stats.delivered >= 1, 10)
    started = time.monotonic()
    reader.stop(timeout=5)
    assert time.monotonic() - started < 2.0
    assert not reader.alive and reader.finished and reader.stats.state == "stopped"
    assert reader.get() is None


def test_missing_file_fails_at_once_with_a_clear_error(start_reader, tmp_path):
    missing = tmp_path / "no-such-clip.mp4"
    started = time.monotonic()
    reader = start_reader(str(missing))
    assert wait_for(lambda: reader.finished, 5)
    assert time.monotonic() - started < 5
    assert reader.failed and reader.stats.state == "failed"
    assert "no such file" in reader.error and str(missing) in reader.error
    assert reader.stats.reconnects == 0


def test_corrupt_file_fails_at_once_with_a_clear_error(start_reader, tmp_path):
    bad = write_corrupt_file(tmp_path / "download.mp4")
    reader = start_reader(str(bad))
    assert wait_for(lambda: reader.finished, 5)
    assert reader.failed
    assert "invalid data" in reader.error and "download.mp4" in reader.error


def test_corrupt_packets_mid_file_are_skipped_and_counted(start_reader, clip_30fps, tmp_path):
    damaged = corrupt_packets(clip_30fps, tmp_path / "damaged.mp4", packets=[40, 41, 70])
    reader = start_reader(str(damaged), analysis_fps=30)
    frames = collect(reader, timeout_s=20)
    stats = reader.stats
    assert stats.state == "ended" and not reader.failed
    assert stats.corrupt >= 1
    assert 80 <= len(frames) < 90  # the rest of the file still comes through
    times = [f.time for f in frames]
    assert times == sorted(times)


def test_realtime_file_drops_oldest_when_nobody_reads(start_reader, make_clip):
    # 2 s at 30 fps paced in real time into a 4-frame queue that nobody reads.
    clip = make_clip(seconds=2.0, fps=30.0)
    reader = start_reader(StreamConfig(url=str(clip), realtime=True), analysis_fps=30, queue_size=4)
    assert wait_for(lambda: reader.stats.state == "ended", 20)
    stats = reader.stats
    assert stats.delivered == 60
    assert stats.dropped == 56  # memory stayed bounded: only queue_size frames were kept
    survivors = collect(reader, timeout_s=2)
    assert [f.index for f in survivors] == [56, 57, 58, 59]  # the newest frames survive
    assert reader.finished


def test_realtime_file_is_paced_by_its_timestamps(start_reader, make_clip):
    clip = make_clip(seconds=1.5, fps=20.0)
    started = time.monotonic()
    reader = start_reader(StreamConfig(url=str(clip), realtime=True), analysis_fps=20)
    frames = collect(reader, timeout_s=20)
    elapsed = time.monotonic() - started
    assert len(frames) == 30
    assert elapsed >= 1.3  # a plain file of this size decodes in a few ms
    # No frame is handed out before its time (relative to the first one).
    t0, w0 = frames[0].time, frames[0].wall_time
    early = [f.index for f in frames if (f.wall_time - w0) < (f.time - t0) - 0.02]
    assert not early


def test_looping_file_keeps_time_monotonic(start_reader, make_clip):
    clip = make_clip(seconds=1.0, fps=10.0)
    reader = start_reader(StreamConfig(url=str(clip), loop=True), analysis_fps=10)
    frames = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 25)
    assert len(frames) >= 25
    times = [f.time for f in frames]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert np.allclose(np.diff(times), 0.1, atol=1e-6)  # a loop adds one frame, no jump
    assert [f.segment for f in frames[:21]] == [0] * 10 + [1] * 10 + [2]
    assert frames[10].pts == pytest.approx(0.0) and frames[10].index == 10
    assert reader.stats.state == "running"


def test_wakeup_event_is_set_for_frames_and_for_the_end(start_reader, make_clip, tmp_path):
    wakeup = threading.Event()
    reader = start_reader(str(make_clip(seconds=0.5, fps=10.0)), wakeup=wakeup)
    got = 0
    deadline = time.monotonic() + 20
    while not reader.finished and time.monotonic() < deadline:
        assert wakeup.wait(5), "no wakeup although frames are pending"
        wakeup.clear()
        while reader.get() is not None:
            got += 1
    assert got == 5

    failing = threading.Event()
    bad = start_reader(str(tmp_path / "missing.mp4"), wakeup=failing)
    assert failing.wait(5) and wait_for(lambda: bad.finished, 5)


def test_hwaccel_cuda_without_gpu_falls_back_to_software(start_reader, clip_30fps, caplog):
    caplog.set_level(logging.WARNING, logger="agent.ingest")
    reader = start_reader(str(clip_30fps), hwaccel="cuda", analysis_fps=10)
    frames = collect(reader, timeout_s=20)
    assert len(frames) == 30 and reader.stats.state == "ended"
    if reader.stats.hwaccel is None:  # no usable GPU here: the user is told so
        messages = [r.getMessage() for r in caplog.records]
        assert any(reader.stream_id in m and "decoding in software" in m for m in messages)


def test_one_consumer_serves_many_readers_through_a_shared_wakeup(start_reader, make_clip):
    clip = make_clip(seconds=1.0, fps=20.0)
    wakeup = threading.Event()
    readers = [
        start_reader(
            StreamConfig(url=str(clip), id=f"cam{i}", realtime=True), wakeup=wakeup, analysis_fps=10
        )
        for i in range(3)
    ]
    frames: dict[str, list[Frame]] = {r.stream_id: [] for r in readers}
    deadline = time.monotonic() + 20
    while not all(r.finished for r in readers) and time.monotonic() < deadline:
        wakeup.wait(1.0)
        wakeup.clear()
        for reader in readers:
            while (frame := reader.get()) is not None:
                frames[frame.stream_id].append(frame)
    assert all(r.stats.state == "ended" for r in readers)
    for stream_id, got in frames.items():
        assert [f.index for f in got] == list(range(0, 20, 2)), stream_id


def test_max_seconds_ends_a_file_early(clip_30fps, start_reader):
    """Only the first seconds are delivered, and the stream ends cleanly (state ended)."""
    reader = start_reader(
        StreamConfig(url=str(clip_30fps), kind="file", max_seconds=0.5), analysis_fps=10
    )
    frames = []
    deadline = time.monotonic() + 20
    while not reader.finished and time.monotonic() < deadline:
        frame = reader.get(timeout=0.2)
        if frame is not None:
            frames.append(frame)
    assert reader.finished and not reader.failed and reader.stats.state == "ended"
    assert 4 <= len(frames) <= 5 and max(f.time for f in frames) < 0.5
