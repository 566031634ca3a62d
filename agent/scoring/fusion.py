"""Model logits to calibrated probabilities, and the per-frame fusion of the two models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.registry import FUSION_RULES, Calibration, ModelPack, PackError


def calibrate(logits: np.ndarray, calibration: Calibration) -> np.ndarray:
    """sigmoid(logit / T + b), elementwise."""
    z = np.asarray(logits, np.float64) / calibration.temperature + calibration.bias
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)


@dataclass(frozen=True)
class Fusion:
    """How a frame's two model scores become one probability (the temporal card's `fusion`).

    `max`: the larger of the two calibrated probabilities: the frame's own spatial one and
    the track's latest window's temporal one (the rolling score does the smoothing over time).
    Either model can raise the score and neither can veto the other: the two look for
    different artefacts, and a fake that shows only one of them is still a fake.
    `logistic`: sigmoid(w_s * mean spatial logit over the window + w_t * temporal logit + b),
    weights fitted by the temporal trainer on exactly those inputs.
    """

    rule: str
    spatial: float = 1.0
    temporal: float = 1.0
    bias: float = 0.0

    @classmethod
    def from_card(cls, temporal: ModelPack) -> Fusion | None:
        block = temporal.card.training.get("fusion") or temporal.card.metrics.get("fusion")
        if not block:
            return None
        rule = block.get("rule", "logistic")
        if rule not in FUSION_RULES:
            raise PackError(
                f"models.temporal: pack {temporal.id} asks for fusion rule {rule!r}; this agent "
                f"knows {', '.join(FUSION_RULES)} (upgrade the agent or use another pack)"
            )
        if rule == "max":
            return cls("max")
        weights = block["weights"]
        return cls("logistic", float(weights["spatial"]), float(weights["temporal"]),
                   float(block.get("bias", 0.0)))

    def fuse(self, spatial_probability: float, temporal_probability: float,
             window_spatial_logits, temporal_logit: float) -> float:
        """One frame's fused probability: its calibrated spatial probability, its track's
        latest calibrated temporal one, and the raw logits the logistic rule was fitted on."""
        if self.rule == "max":
            return float(max(spatial_probability, temporal_probability))
        z = self.spatial * float(np.mean(window_spatial_logits)) + self.temporal * temporal_logit + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))
