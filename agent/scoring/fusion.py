"""Model logits to calibrated probabilities, and the per-frame fusion of the two models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.fusion import gated_max
from engines.registry import FUSION_RULES, Calibration, ModelPack, PackError


def calibrate(logits: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The pack's calibrated probabilities, float32 (the formula: engines.registry.calibrated)."""
    return calibration.apply(logits).astype(np.float32)


@dataclass(frozen=True)
class Fusion:
    """How a frame's two model scores become one probability (the temporal card's `fusion`).

    `gated_max`: the track's latest window's calibrated temporal probability, raised to the
    frame's own calibrated spatial one where that passes `spatial_gate` (the spatial card's
    threshold): the temporal model speaks for the track, the spatial model overrides it only
    when it alarms on its own. Below its threshold the spatial probability is mostly noise on
    real faces, and under plain `max` that noise lifted every real track's score.
    `max`: the larger of the two calibrated probabilities, ungated: either model can raise
    the score and neither can veto the other (the rolling score does the smoothing over time).
    `logistic`: sigmoid(w_s * mean spatial logit over the window + w_t * temporal logit + b),
    weights fitted by the temporal trainer on exactly those inputs.
    """

    rule: str
    spatial: float = 1.0
    temporal: float = 1.0
    bias: float = 0.0
    spatial_gate: float = 0.0

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
        if rule == "gated_max":
            gate = block.get("spatial_gate")
            if not isinstance(gate, (int, float)) or not 0.0 <= gate < 1.0:
                raise PackError(f"models.temporal: pack {temporal.id}'s fusion rule gated_max needs "
                                "a spatial_gate probability in its card (training.fusion), found "
                                f"{gate!r}; retrain it")
            return cls("gated_max", spatial_gate=float(gate))
        weights = block["weights"]
        return cls("logistic", float(weights["spatial"]), float(weights["temporal"]),
                   float(block.get("bias", 0.0)))

    def fuse(self, spatial_probability: float, temporal_probability: float,
             window_spatial_logits, temporal_logit: float) -> float:
        """One frame's fused probability: its calibrated spatial probability, its track's
        latest calibrated temporal one, and the raw logits the logistic rule was fitted on."""
        if self.rule in ("max", "gated_max"):  # max: a gate of 0
            return float(gated_max(spatial_probability, temporal_probability, self.spatial_gate))
        z = self.spatial * float(np.mean(window_spatial_logits)) + self.temporal * temporal_logit + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))
