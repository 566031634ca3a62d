"""The LayerNorm-tuning experiment rebuilds CLIP's last blocks from the INT8 graph: they must
compute what the graph computes, or its figures would measure another model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.backbone import feature_graph, locate
from engines.registry import BackboneSpec
from engines.runtime.sessions import cpu_session
from engines.train.run_setup import read_config
from tests.support.face_media import astronaut_bgr

torch = pytest.importorskip("torch")


def test_fp32_blocks_reproduce_the_int8_graphs_class_tokens():
    from engines.train.deep_ln_probe import BLOCKS, FIRST, Model, load_blocks

    config = read_config(Path(__file__).resolve().parents[2] / "configs/train/deep-clip.yaml")
    spec = BackboneSpec.model_validate(config["backbone"])
    path = locate(spec)
    names = [f"layer{k}" for k in range(FIRST, FIRST + BLOCKS + 1)]  # block 9's input, then 9-12
    session = cpu_session(feature_graph(spec, path, names).SerializeToString(), 2)
    crop = np.ascontiguousarray(astronaut_bgr(224, 224)[None])
    outputs = session.run(names, {"crops": crop})
    model = Model(load_blocks(path), np.zeros(768 * BLOCKS), np.ones(768 * BLOCKS))
    with torch.no_grad():
        mine = model.features(torch.from_numpy(outputs[0])).numpy().reshape(BLOCKS, 768)
    theirs = np.stack([tokens[0, 0] for tokens in outputs[1:]])
    cosine = (mine * theirs).sum(1) / np.linalg.norm(mine, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.98, cosine
    # and not by accident: another block's weights do not reproduce them
    shuffled = Model(load_blocks(path)[::-1], np.zeros(768 * BLOCKS), np.ones(768 * BLOCKS))
    with torch.no_grad():
        other = shuffled.features(torch.from_numpy(outputs[0])).numpy().reshape(BLOCKS, 768)
    wrong = (other * theirs).sum(1) / np.linalg.norm(other, axis=1) / np.linalg.norm(theirs, axis=1)
    assert wrong.min() < cosine.min()
