"""Faces in a stream: tracking between detections, and the quality gate."""

from agent.faces.quality import QualityGate, QualityReport
from engines.faces.tracker import FaceTracker, Track

__all__ = ["FaceTracker", "QualityGate", "QualityReport", "Track"]
