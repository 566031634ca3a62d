"""Seeded epoch plans for the training data loaders (spatial pairs and temporal windows).

An epoch is a plan of (sample index, sample seed) rows drawn up front; each sample's
randomness comes from its own seed, so results do not depend on data-loader worker timing.
The sampler yields the rows, so persistent data-loader workers (spawned, not forked: forking
after OpenCV/torch threads have started can deadlock) need the data bank only once.
"""

from __future__ import annotations

import cv2
import numpy as np


def epoch_plan(n_samples: int, weights: np.ndarray, seed: int, epoch: int,
               salt: int = 7) -> np.ndarray:
    """(n_samples, 2) int64 rows of (sample index, sample seed) for one epoch; `salt` keeps
    the plans of different trainers apart."""
    rng = np.random.default_rng([seed, epoch, salt])
    picks = rng.choice(len(weights), size=n_samples, replace=True, p=weights)
    seeds = rng.integers(0, 2**62, size=n_samples)
    return np.stack([picks, seeds], 1).astype(np.int64)


class PlanSampler:
    """Yields the rows of `epoch_plan` for the current epoch (`set_epoch`)."""

    def __init__(self, weights: np.ndarray, n_samples: int, seed: int, salt: int = 7) -> None:
        self.weights, self.n_samples, self.seed, self.salt = weights, n_samples, seed, salt
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self):
        for row in epoch_plan(self.n_samples, self.weights, self.seed, self.epoch, self.salt):
            yield (int(row[0]), int(row[1]))


def worker_init(_worker_id: int) -> None:
    """Data-loader workers: one thread each (the cores are the workers)."""
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
