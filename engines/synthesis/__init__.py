"""Synthetic fakes made from real faces (numpy + OpenCV only, no torch: the demo uses them)."""

from engines.synthesis.sbi import (
    ClipBlender,
    SBIConfig,
    SBIParams,
    blend_mask,
    face_ellipse_landmarks,
    self_blend,
    self_blend_clip,
)

__all__ = [
    "ClipBlender",
    "SBIConfig",
    "SBIParams",
    "blend_mask",
    "face_ellipse_landmarks",
    "self_blend",
    "self_blend_clip",
]
