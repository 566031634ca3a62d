"""A tiny temporal network and random windows for export, ensemble and training tests
(needs torch: import it after pytest.importorskip("torch"))."""

from __future__ import annotations

import numpy as np
import torch

from engines.models.temporal import TemporalNet

T, SIZE = 8, 48
WIDTHS = (8, 8, 16, 16)


def tiny_net(seed: int = 0) -> TemporalNet:
    torch.manual_seed(seed)
    net = TemporalNet(WIDTHS, frames=T).eval()
    # Non-trivial BN statistics, so export checks compare real numbers and seeds differ.
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return net


def random_windows(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 windows, N x T x SIZE x SIZE x 3."""
    return np.random.default_rng(seed).integers(0, 256, (n, T, SIZE, SIZE, 3), dtype=np.uint8)
