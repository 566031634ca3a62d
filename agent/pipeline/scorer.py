"""The deepfake models as the pipeline sees them: crops in, calibrated probabilities out."""

from __future__ import annotations

import logging
import time

import numpy as np

from agent.config import ModelsConfig
from agent.scoring.fusion import calibrate
from engines.faces.align import AlignSpec
from engines.registry import ModelPack, resolve_pack
from engines.runtime import Engine, create_engine

log = logging.getLogger("agent.pipeline")


class FaceScorer:
    """Runs the spatial model (and, when configured, the temporal one) on batches of crops."""

    def __init__(self, config: ModelsConfig) -> None:
        self.config = config
        self.spatial_pack: ModelPack = resolve_pack(config.spatial)
        if self.spatial_pack.card.role != "spatial":
            raise ValueError(
                f"models.spatial: pack {self.spatial_pack.id} has role "
                f"{self.spatial_pack.card.role!r}, not 'spatial'"
            )
        self.spatial: Engine = create_engine(
            self.spatial_pack,
            config.runtime,
            threads=config.threads,
            max_batch=config.max_batch,
            cache_dir=config.engine_cache_dir,
        )
        self.inference_seconds = 0.0
        self.crops_scored = 0
        log.info("spatial model %s on %s", self.spatial_pack.id, self.spatial.runtime)

    @property
    def align_spec(self) -> AlignSpec:
        return self.spatial_pack.card.input.align

    @property
    def threshold(self) -> float:
        """The alert threshold: the stream-level calibrated one when the card has it."""
        card = self.spatial_pack.card
        return card.alert_threshold.value if card.alert_threshold else card.threshold

    @property
    def model_ids(self) -> dict[str, str]:
        return {"spatial": self.spatial_pack.id}

    def spatial_logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits for (N, H, W, 3) uint8 crops, in chunks of at most max_batch."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32)
        started = time.perf_counter()
        step = self.config.max_batch
        logits = np.concatenate(
            [self.spatial.infer(crops[i : i + step]) for i in range(0, len(crops), step)]
        )
        self.inference_seconds += time.perf_counter() - started
        self.crops_scored += len(crops)
        return logits

    def spatial_probabilities(self, crops: np.ndarray) -> np.ndarray:
        return calibrate(self.spatial_logits(crops), self.spatial_pack.card.calibration)
