"""Out-of-distribution check: is this face crop like the faces the model was trained on?

A model judges reliably only inputs like its training data. The spatial model exports, next to
its logit, the globally pooled features of its last stage (`embedding`). The pack stores a
Gaussian fitted to the embeddings of the training faces (mean and a shrunk covariance, Ledoit-Wolf)
and a threshold on the Mahalanobis distance (Lee et al., NeurIPS 2018), set at a high quantile
of the distances of held-out real validation faces. A crop beyond it is "out of distribution":
the agent reports the face as `unknown` (reason `out_of_distribution`), never as real.

Run time needs numpy only; fitting (training time) uses scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REASON = "out_of_distribution"


@dataclass(frozen=True)
class OODStats:
    mean: np.ndarray
    """(C,) mean embedding of the training faces."""
    precision: np.ndarray
    """(C, C) inverse of the shrunk covariance."""
    threshold: float
    """Distances above this are out of distribution."""

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each (N, C) embedding to the training faces."""
        centred = np.asarray(embeddings, np.float64).reshape(len(embeddings), -1) - self.mean
        squared = np.einsum("nc,cd,nd->n", centred, self.precision, centred)
        return np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)

    def out_of_distribution(self, embeddings: np.ndarray) -> np.ndarray:
        return self.distances(embeddings) > self.threshold

    def save(self, path: Path) -> Path:
        np.savez(path, mean=self.mean, precision=self.precision, threshold=self.threshold)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> OODStats:
        with np.load(path) as data:
            return cls(data["mean"].astype(np.float64), data["precision"].astype(np.float64),
                       float(data["threshold"]))


def fit(train: np.ndarray, held_out: np.ndarray, quantile: float) -> tuple[OODStats, dict]:
    """Gaussian on `train` embeddings; threshold at `quantile` of the `held_out` distances.

    Returns the stats and what was measured (counts, the shrinkage, distance quantiles)."""
    from sklearn.covariance import LedoitWolf

    train = np.asarray(train, np.float64)
    if len(train) < 2 or len(held_out) < 1:
        raise ValueError("fitting the OOD check needs >= 2 training and >= 1 held-out embeddings")
    estimator = LedoitWolf().fit(train)
    stats = OODStats(estimator.location_, estimator.precision_, float("inf"))
    held = stats.distances(held_out)
    threshold = float(np.quantile(held, quantile))
    stats = OODStats(stats.mean, stats.precision, threshold)
    train_d = stats.distances(train)
    measured = {
        "n_train": int(len(train)),
        "n_held_out": int(len(held_out)),
        "dims": int(train.shape[1]),
        "shrinkage": round(float(estimator.shrinkage_), 4),
        "quantile": quantile,
        "threshold": round(threshold, 4),
        "train_distance_p50_p99": [round(float(v), 3) for v in np.quantile(train_d, [0.5, 0.99])],
        "held_out_distance_p50_p99": [round(float(v), 3) for v in np.quantile(held, [0.5, 0.99])],
    }
    return stats, measured
