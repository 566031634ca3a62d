"""Model logits to calibrated probabilities, and the per-frame fusion of several models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.registry import Calibration


@dataclass(frozen=True)
class Calibrated:
    """Per-frame calibrated fake probabilities, by model role."""

    by_role: dict[str, float]

    @property
    def fused(self) -> float:
        # One model per role today; with several, the mean of calibrated probabilities is a
        # safe default until a fusion model is trained on held-out data.
        return float(np.mean(list(self.by_role.values())))


def calibrate(logits: np.ndarray, calibration: Calibration) -> np.ndarray:
    """sigmoid(logit / T + b), elementwise."""
    z = np.asarray(logits, np.float64) / calibration.temperature + calibration.bias
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)
