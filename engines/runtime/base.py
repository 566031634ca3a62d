"""The engine interface every runtime implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EngineUnavailable(RuntimeError):
    """The requested runtime cannot run on this machine."""


class Engine(Protocol):
    """Runs one model pack. infer() takes uint8 crops (N, [T,] H, W, 3) BGR, returns (N,) logits."""

    name: str
    runtime: str

    def infer(self, batch: np.ndarray) -> np.ndarray: ...
