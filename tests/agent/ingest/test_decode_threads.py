"""ingest.decode_threads auto: one decoder thread per stream once streams outnumber the cores."""

from __future__ import annotations

import os

from agent.config import load_config
from agent.ingest import decode_threads_for
from agent.pipeline import Pipeline


def test_auto_gives_one_thread_per_stream_once_streams_reach_the_cores():
    assert decode_threads_for(0, streams=1, cores=2) == 0  # FFmpeg's frame threads use the idle core
    assert decode_threads_for(0, streams=2, cores=2) == 1
    assert decode_threads_for(0, streams=24, cores=2) == 1
    assert decode_threads_for(3, streams=24, cores=2) == 3  # a setting always wins
    assert decode_threads_for(1, streams=1, cores=16) == 1


def test_the_pipeline_resolves_auto_against_the_streams_it_watches(real_clip):
    cores = os.cpu_count() or 1
    many = [{"url": str(real_clip.path), "id": f"s{k}"} for k in range(cores)]
    pipeline = Pipeline(load_config(streams=many, models={"deep": None}))
    try:
        assert {slot.reader.ingest.decode_threads for slot in pipeline.slots} == {1}
        added = pipeline.add_stream(load_config(streams=[{"url": str(real_clip.path), "id": "late"}]).streams[0])
        assert added.reader.ingest.decode_threads == 1
    finally:
        pipeline.close()
    if cores > 1:
        few = Pipeline(load_config(streams=many[: cores - 1], models={"deep": None}))
        try:
            assert {slot.reader.ingest.decode_threads for slot in few.slots} == {0}
        finally:
            few.close()
    pinned = Pipeline(load_config(streams=many, ingest={"decode_threads": 2}, models={"deep": None}))
    try:
        assert {slot.reader.ingest.decode_threads for slot in pinned.slots} == {2}
    finally:
        pinned.close()
