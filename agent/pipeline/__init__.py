"""The analysis pipeline: frames -> faces -> scores -> track events."""

from agent.pipeline.analyzer import FaceObservation, StreamAnalyzer
from agent.pipeline.runner import EventListener, Pipeline, PipelineStats
from agent.pipeline.scorer import FaceScorer
from agent.pipeline.tracks import TrackBook, TrackEvent, TrackState

__all__ = [
    "EventListener",
    "FaceObservation",
    "FaceScorer",
    "Pipeline",
    "PipelineStats",
    "StreamAnalyzer",
    "TrackBook",
    "TrackEvent",
    "TrackState",
]
