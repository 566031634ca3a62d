"""Stream time, the frame-rate cap, pacing and the frame queue, on their own."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from agent.ingest.queues import FrameQueue
from agent.ingest.timeline import FrameRateCap, RealtimePacer, StreamClock


def admitted(times: list[float], cap_fps: float, source_fps: float) -> list[int]:
    cap = FrameRateCap(cap_fps)
    return [i for i, t in enumerate(times) if cap.admit(t, 1.0 / source_fps)]


def test_cap_30_to_10_takes_exactly_every_third_frame():
    times = [i / 30 for i in range(300)]
    assert admitted(times, 10, 30) == list(range(0, 300, 3))


def test_cap_25_to_10_keeps_the_rate_without_drift():
    times = [i / 25 for i in range(250)]  # 10 s
    chosen = np.array(times)[admitted(times, 10, 25)]
    assert len(chosen) == 100
    assert np.diff(chosen).min() >= 0.08 - 1e-9 and np.diff(chosen).max() <= 0.12 + 1e-9


def test_cap_tolerates_rtp_timestamp_jitter():
    # 15 fps on a 90 kHz clock, one tick early or late at random: capping at 15 keeps all.
    rng = np.random.default_rng(0)
    times = [(6000 * i + int(rng.integers(-1, 2))) / 90000 for i in range(150)]
    assert len(admitted(times, 15, 15)) == 150
    assert len(admitted(times, 5, 15)) == 50


def test_cap_above_the_source_rate_keeps_everything_and_restarts_after_gaps():
    times = [i / 5 for i in range(10)] + [10 + i / 5 for i in range(10)]
    assert admitted(times, 10, 5) == list(range(20))
    times = [i / 30 for i in range(30)] + [5 + i / 30 for i in range(30)]
    chosen = admitted(times, 10, 30)
    assert 30 in chosen  # the first frame after the gap is taken at once
    assert len(chosen) == 20


def test_clock_starts_at_zero_and_follows_pts():
    clock = StreamClock(nominal_fps=10)
    assert [clock.place(pts, wall=0.0) for pts in (5.0, 5.1, 5.3)] == pytest.approx([0, 0.1, 0.3])


def test_clock_fills_in_missing_pts():
    # RTSP often gives the first frame no pts.
    clock = StreamClock(nominal_fps=15)
    times = [clock.place(pts, wall=0.0) for pts in (None, 1 / 15, 2 / 15, None, 4 / 15)]
    assert times == pytest.approx([0, 1 / 15, 2 / 15, 3 / 15, 4 / 15])


def test_clock_adds_the_wall_clock_gap_after_a_reconnection():
    clock = StreamClock(nominal_fps=10)
    clock.place(0.0, wall=100.0)
    assert clock.place(0.1, wall=100.1) == pytest.approx(0.1)
    clock.new_segment("reconnect")
    # The server restarted: its timestamps begin again at 0, 3 s of wall time later.
    assert clock.place(0.0, wall=103.1) == pytest.approx(3.1)
    assert clock.place(0.1, wall=103.2) == pytest.approx(3.2)


def test_clock_continues_one_frame_later_after_a_loop_and_never_goes_back():
    clock = StreamClock(nominal_fps=10)
    for pts in (0.0, 0.1, 0.2):
        clock.place(pts, wall=0.0)
    clock.new_segment("loop")
    assert clock.place(0.0, wall=0.0) == pytest.approx(0.3)
    assert clock.place(0.1, wall=0.0) == pytest.approx(0.4)
    assert clock.place(0.05, wall=0.0) == pytest.approx(0.5)  # pts went backwards


def test_pacer_waits_for_each_frame_and_does_not_burst_after_a_stall():
    pacer = RealtimePacer(max_lag_s=1.0)
    assert pacer.delay(0.0, wall=50.0) == 0
    assert pacer.delay(0.5, wall=50.1) == pytest.approx(0.4)
    # Decoding stalled for 3 s: restart the schedule instead of rushing through 3 s of frames.
    assert pacer.delay(1.0, wall=54.0) == 0
    assert pacer.delay(1.1, wall=54.0) == pytest.approx(0.1)


def test_queue_drop_oldest_keeps_the_newest_items():
    queue: FrameQueue[int] = FrameQueue(3, drop_oldest=True)
    evicted = sum(queue.put(i) for i in range(10))
    assert evicted == 7 and len(queue) == 3
    assert [queue.get(), queue.get(), queue.get(), queue.get()] == [7, 8, 9, None]


def test_blocking_queue_waits_for_room_and_close_releases_it():
    queue: FrameQueue[int] = FrameQueue(1, drop_oldest=False)
    assert queue.put(1) == 0
    results: list[int | None] = []
    putter = threading.Thread(target=lambda: results.append(queue.put(2)))
    putter.start()
    time.sleep(0.1)
    assert putter.is_alive()  # waiting for room
    assert queue.get() == 1
    putter.join(2)
    assert results == [0] and queue.get() == 2

    assert queue.put(3) == 0
    blocked = threading.Thread(target=lambda: results.append(queue.put(4)))
    blocked.start()
    time.sleep(0.1)
    queue.close()
    blocked.join(2)
    assert not blocked.is_alive() and results[-1] is None  # discarded, not queued
    assert queue.get() == 3 and queue.get(timeout=None) is None
