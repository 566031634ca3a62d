"""The probability rules of the temporal card's fusion, shared by the agent (per frame) and
the temporal trainer (per window, on arrays): one formula, so the card measures what runs."""

from __future__ import annotations

import numpy as np


def gated_max(spatial: np.ndarray | float, temporal: np.ndarray | float,
              spatial_gate: float = 0.0) -> np.ndarray:
    """max(spatial where spatial >= spatial_gate else 0, temporal), elementwise (broadcast).

    Calibrated probabilities in, one out. spatial_gate 0 is the plain `max` rule: either
    model raises the score and neither vetoes. A gate (the spatial card's threshold, for
    `gated_max`) lets the spatial model raise the temporal score only where it alarms on its
    own."""
    spatial = np.asarray(spatial, np.float64)
    return np.maximum(np.where(spatial >= spatial_gate, spatial, 0.0), np.asarray(temporal, np.float64))
