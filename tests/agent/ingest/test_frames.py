"""Frames stay in the decoder's format until analysed: a frame dropped from a queue is never
converted, and a converted frame is FFmpeg's BGR picture, as before."""

from __future__ import annotations

import av
import numpy as np
import pytest

from agent.config.ingest import StreamConfig
from agent.ingest import Frame
from tests.agent.ingest.helpers import collect, wait_for


def test_queued_frames_are_converted_only_when_read(start_reader, make_clip):
    clip = make_clip(seconds=2.0, fps=30.0)
    reader = start_reader(StreamConfig(url=str(clip), realtime=True), analysis_fps=30, queue_size=4)
    assert wait_for(lambda: reader.stats.state == "ended", 20)
    assert reader.stats.dropped == 56
    survivors = collect(reader, timeout_s=2)
    assert [f.index for f in survivors] == [56, 57, 58, 59]
    # Nothing was converted while they waited: the 56 dropped frames cost no conversion.
    assert all(f.convert_seconds == 0.0 for f in survivors)
    assert (survivors[0].width, survivors[0].height) == (320, 240)

    with av.open(str(clip)) as container:
        expected = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)][56:60]
    for frame, want in zip(survivors, expected):
        image = frame.image
        assert image is frame.image  # converted once
        assert frame.convert_seconds > 0.0
        np.testing.assert_array_equal(image, want)  # the same pixels training's crops see


def test_a_frame_holds_exactly_one_picture():
    with pytest.raises(ValueError, match="exactly one"):
        Frame("s", 0, 0.0, None, 0.0, 0)
    image = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match="exactly one"):
        Frame("s", 0, 0.0, None, 0.0, 0, image, decoded=av.VideoFrame.from_ndarray(image, format="bgr24"))
    frame = Frame("s", 0, 0.0, None, 0.0, 0, image)
    assert frame.image is image and (frame.width, frame.height) == (6, 4)
