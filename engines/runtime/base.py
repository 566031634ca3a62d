"""The engine interface every runtime implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EngineUnavailable(RuntimeError):
    """The requested runtime cannot run on this machine."""


class Engine(Protocol):
    """Runs one model pack. infer() takes uint8 crops (N, [T,] H, W, 3) BGR, returns (N,) logits.

    infer_with_embedding() also returns the (N, C) embedding the out-of-distribution check
    reads, or None where the engine serves logits only (`has_embedding` False)."""

    name: str
    runtime: str
    has_embedding: bool

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def infer_with_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...
