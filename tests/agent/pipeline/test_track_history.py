"""A long-running agent remembers a bounded number of ended face tracks per stream."""

from __future__ import annotations

import numpy as np

from agent.config import ScoringConfig
from agent.pipeline.tracks import TrackBook
from agent.app import FINISHED_TRACKS_KEPT


def churn(book: TrackBook, tracks: int) -> None:
    box = np.array([10.0, 10.0, 60.0, 60.0])
    for track_id in range(tracks):
        book.update(track_id, float(track_id), box, (640, 480), {"spatial": 0.1}, 0.1, None)
        book.end(track_id, "track_lost")


def test_ended_tracks_are_bounded_when_asked():
    book = TrackBook("lobby", ScoringConfig(), 0.5, keep_finished=3)
    churn(book, 10_000)
    assert [s.track_id for s in book.finished] == [9_997, 9_998, 9_999]
    assert not book.states


def test_reports_on_files_keep_every_track():
    book = TrackBook("file", ScoringConfig(), 0.5)
    churn(book, 50)
    assert len(book.finished) == 50


def test_the_agent_bounds_its_history(redis_url):
    from agent.app import Agent
    from agent.config import load_config

    with Agent(load_config(alerts={"redis_url": redis_url},
                           streams=[{"url": "whip:desk"}])) as agent:
        slot = agent.pipeline.slots[0]
        assert slot.book.finished.maxlen == FINISHED_TRACKS_KEPT
