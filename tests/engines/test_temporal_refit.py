"""`verity train temporal --refit-fusion PACK`: a pack's network is kept only when the config
trained it, and a wrong pack is refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.data.clips import spec_from_config
from engines.registry import resolve_pack
from engines.train.temporal import load_config, reuse_mismatches, target_spec
from engines.train.temporal_data import WindowFakeConfig

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "temporal-sbi.yaml"


def mismatches(cfg: dict) -> list[str]:
    target, frames = target_spec(cfg)
    return reuse_mismatches(resolve_pack("temporal-sbi").card.training, cfg,
                            WindowFakeConfig.from_dict(cfg["fakes"]),
                            spec_from_config(cfg).digest(), frames, target)


def test_the_shipped_pack_was_trained_by_the_shipped_config():
    assert mismatches(load_config(CONFIG)) == []


@pytest.mark.parametrize("section, key, value, named", [
    ("model", "widths", [8, 16, 32, 64], "model"),
    ("train", "epochs", 3, "train (recipe)"),
    ("fakes", "reenact_full_p", 0.9, "fakes"),  # a field newer than the pack, set off default
    ("sbi", "blur_kernel", [3, 5], "sbi"),
    ("clips", "analysis_fps", 5, "clips (window cache)"),
    ("input", "frames", 12, "input.frames"),
])
def test_anything_that_shaped_the_network_refuses_the_refit(section, key, value, named):
    cfg = load_config(CONFIG)
    cfg[section][key] = value
    assert named in mismatches(cfg)


def test_a_spatial_pack_is_refused_before_any_work(tmp_path, capsys):
    pytest.importorskip("torch")
    from engines.train.temporal import main

    work = tmp_path / "work"
    code = main(["--config", str(CONFIG), "--data", str(tmp_path / "no-data"),
                 "--work", str(work), "--refit-fusion", "spatial-sbi"])
    assert code == 2
    assert "is not a temporal pack" in capsys.readouterr().err
    assert not (work / "pack").exists()
