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


def test_the_shipped_temporal_card_is_reproduced_by_a_refit(data_dir, tmp_path):
    """The shipped temporal pack's calibration, fusion and validation figures, re-measured
    from its config, its network and the shipped spatial pack (about 2 min: the window cache
    is built, unless VERITY_CLIP_CACHE_DIR holds it)."""
    pytest.importorskip("torch")
    pytest.importorskip("mediapipe")
    import os

    from engines.train.temporal import run
    from tests.support.face_media import skip_if_manifest_grew

    skip_if_manifest_grew(data_dir, "temporal-sbi")
    shipped = resolve_pack("temporal-sbi").card
    cache = Path(os.environ.get("VERITY_CLIP_CACHE_DIR") or tmp_path / "clips")
    pack = run(CONFIG, data_dir, tmp_path / "work", cache_dir=cache,
               spatial_pack="spatial-sbi", refit="temporal-sbi")
    card = resolve_pack(pack).card
    assert card.onnx_sha256 == shipped.onnx_sha256  # the network is kept, not retrained
    assert card.calibration.temperature == pytest.approx(shipped.calibration.temperature, abs=1e-4)
    assert card.calibration.bias == pytest.approx(shipped.calibration.bias, abs=1e-4)
    fusion, shipped_fusion = card.training["fusion"], shipped.training["fusion"]
    assert fusion["spatial_model"] == shipped_fusion["spatial_model"]
    assert fusion["threshold"] == pytest.approx(shipped_fusion["threshold"], abs=1e-4)
    for score in ("temporal", "spatial", "fused"):
        for level in ("window", "video"):
            assert card.metrics["validation"]["all_fakes"][score][level]["auc"] == pytest.approx(
                shipped.metrics["validation"]["all_fakes"][score][level]["auc"], abs=1e-3)


@pytest.mark.parametrize("line, named", [
    ("ensemble_seeds: [0]", "ensemble_seeds"),
    ("fusion: {rule: maximum}", "fusion.rule"),
    ("export: {flip_average: 'yes'}", "export.flip_average"),
    ("augment: {video_p: 2}", "augment.video_p"),
])
def test_a_wrong_config_value_is_named_before_any_work(tmp_path, capsys, line, named):
    from engines.train.temporal import main

    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.read_text() + f"\n{line}\n")
    work = tmp_path / "work"
    code = main(["--config", str(config), "--data", str(tmp_path), "--work", str(work)])
    assert code == 2 and named in capsys.readouterr().err
    assert not work.exists()


def test_the_recipe_names_h264_windows_only_where_a_config_uses_them():
    """The shipped recipe's text (which a reused network is checked by) stays as it was."""
    import yaml

    from engines.train.temporal import recipe_text
    from engines.train.temporal_data import WindowFakeConfig

    cfg = yaml.safe_load(CONFIG.read_text())
    fakes = WindowFakeConfig.from_dict(cfg["fakes"])
    assert "H.264" not in recipe_text(cfg, fakes)
    assert recipe_text(cfg, fakes) == resolve_pack("temporal-sbi").card.training["recipe"]
    cfg["augment"] = {**cfg["augment"], "video_p": 0.4, "video_crf": [18, 40]}
    assert "0.4 of the windows coded as one H.264 clip at CRF 18-40" in recipe_text(cfg, fakes)
