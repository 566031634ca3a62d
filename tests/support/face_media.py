"""Fixtures: face media built from the photo that ships in scikit-image (no data folder needed)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.demo.clip import astronaut_bgr, build_clip


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """640x480 BGR frame with one frontal face."""
    return astronaut_bgr(640, 480)


@pytest.fixture(scope="session")
def detector():
    from engines.faces import create_detector
    from engines.faces.detectors import MediaPipeDetectorConfig

    return create_detector(MediaPipeDetectorConfig())


@pytest.fixture(scope="session")
def manipulated_clip(tmp_path_factory):
    """4 s real, then 4 s self-blended: the demo's clip (H.264, 640x480, 25 fps)."""
    return build_clip(tmp_path_factory.mktemp("clips") / "manipulated.mp4", real_seconds=4, fake_seconds=4)


@pytest.fixture(scope="session")
def real_clip(tmp_path_factory):
    """8 s of the real face only."""
    return build_clip(tmp_path_factory.mktemp("clips") / "real.mp4", real_seconds=8, fake_seconds=0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The face media folder (VERITY_DATA_DIR); tests that need it skip when it is absent."""
    value = os.environ.get("VERITY_DATA_DIR")
    if not value:
        pytest.skip("VERITY_DATA_DIR is not set: the face media folder is not available here")
    path = Path(value)
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"VERITY_DATA_DIR={path} has no manifest.csv")
    return path


def shifted(image: np.ndarray, dx: float, dy: float, scale: float = 1.0) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0, scale)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def skip_if_manifest_grew(data_dir: Path, pack_name: str) -> None:
    """Skip (saying why) a test that re-measures a pack's card when the manifest no longer
    holds the files the card was measured on: its split, and every figure, would differ."""
    from engines.manifest import read_manifest
    from engines.registry import resolve_pack

    split = resolve_pack(pack_name).card.training["data"]["split"]
    then = split["train"]["files"] + split["val"]["files"]
    now = len(read_manifest(data_dir))
    if now != then:
        pytest.skip(f"the manifest holds {now} files, the {pack_name} card's split {then}: the "
                    "card predates the manifest's additions (retrain it to re-measure)")
