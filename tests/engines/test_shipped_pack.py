"""The shipped spatial-sbi pack loads, its checksum matches, and it scores crops."""

from __future__ import annotations

import numpy as np
import pytest

from engines.registry import PACKS_DIR, file_sha256, resolve_pack


@pytest.fixture(scope="module")
def pack():
    if not (PACKS_DIR / "spatial-sbi" / "card.json").is_file():
        pytest.skip("engines/packs/spatial-sbi has not been built yet")
    return resolve_pack("spatial-sbi")


def test_pack_loads_and_checksum_matches(pack):
    assert pack.card.name == "spatial-sbi"
    assert pack.card.role == "spatial"
    assert pack.card.onnx_sha256 == file_sha256(pack.onnx_path)
    assert pack.onnx_path.stat().st_size < 8 * 1024 * 1024
    assert (pack.folder / "MODEL_CARD.md").is_file()
    assert 0 < pack.card.threshold < 1
    assert pack.card.calibration.temperature > 0
    assert pack.card.metrics.get("protocol")


def test_pack_scores_a_batch(pack):
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    size = pack.card.input.size
    engine = OnnxRuntimeEngine(pack, threads=1)
    crops = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    logits = engine.infer(crops)
    assert logits.shape == (3,) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert engine.infer(crops[:1]).shape == (1,)
