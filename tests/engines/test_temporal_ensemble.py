"""Temporal ensembles: one graph averaging the logits of networks trained with other seeds,
joined from packs or exported from training; a member of another recipe is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from engines.models.temporal import TemporalEnsemble
from engines.registry import resolve_pack
from engines.train.temporal_ensemble import (
    config_seeds,
    join_onnx,
    join_packs,
    main,
    mean_logits_check,
)
from engines.train.temporal_export import (
    export_temporal_onnx,
    onnx_window_logits,
    torch_window_logits,
)
from tests.support.temporal_nets import SIZE, T, random_windows, tiny_net

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "temporal-sbi.yaml"
def test_joined_graph_is_the_mean_of_its_members(tmp_path):
    paths = [export_temporal_onnx(tiny_net(s), tmp_path / f"m{s}.onnx", T, SIZE, flip_average=True)
             for s in (0, 1)]
    joined = join_onnx(paths, tmp_path / "joined.onnx")
    windows = random_windows(5)
    a, b = (onnx_window_logits(str(p), windows) for p in paths)
    assert np.abs(a - b).max() > 1e-3  # two different networks
    assert mean_logits_check(paths, joined, windows) < 1e-5
    assert onnx_window_logits(str(joined), windows[:1]).shape == (1,)  # dynamic batch


def test_training_export_of_an_ensemble_matches_the_joined_members(tmp_path):
    nets = [tiny_net(0), tiny_net(1)]
    ensemble = TemporalEnsemble(nets).eval()
    exported = export_temporal_onnx(ensemble, tmp_path / "ens.onnx", T, SIZE, flip_average=True)
    members = [export_temporal_onnx(n, tmp_path / f"m{i}.onnx", T, SIZE, flip_average=True)
               for i, n in enumerate(nets)]
    joined = join_onnx(members, tmp_path / "joined.onnx")
    windows = random_windows(4)
    np.testing.assert_allclose(onnx_window_logits(str(exported), windows),
                               onnx_window_logits(str(joined), windows), atol=1e-4)
    np.testing.assert_allclose(torch_window_logits(ensemble, windows, flip_average=True),
                               onnx_window_logits(str(exported), windows), atol=1e-4)


@pytest.mark.parametrize("seeds", [[0], [1, 1], "0,1", [0, True]])
def test_bad_ensemble_seeds_are_named(seeds):
    with pytest.raises(ValueError, match="ensemble_seeds"):
        config_seeds({"ensemble_seeds": seeds})
    assert config_seeds({"seed": 4}) == [4]


def _member(tmp_path: Path, seed: int) -> Path:
    """The shipped temporal pack as if trained with `seed` (same recipe otherwise)."""
    import shutil

    folder = tmp_path / f"seed{seed}"
    shutil.copytree(resolve_pack("temporal-sbi").folder, folder)
    card = json.loads((folder / "card.json").read_text())
    card["training"]["seed"] = seed
    card["version"] = f"seed{seed}"
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_packs_join_into_a_network_for_refit(tmp_path):
    config = tmp_path / "ensemble.yaml"
    config.write_text(CONFIG.read_text() + "\nensemble_seeds: [0, 1]\n")
    out = join_packs(config, [_member(tmp_path, 1), "temporal-sbi"], tmp_path / "network")
    card = resolve_pack(out).card
    ensemble = card.training["ensemble"]
    assert ensemble["seeds"] == [0, 1]
    assert [m["seed"] for m in ensemble["members"]] == [0, 1]  # in the config's order
    shipped = resolve_pack("temporal-sbi").card.training["model"]
    assert card.training["model"]["macs"] == 2 * shipped["macs"]
    # The joined network is what --refit-fusion checks against the ensemble config.
    from engines.data.clips import spec_from_config
    from engines.train.temporal import load_config, reuse_mismatches, target_spec
    from engines.train.temporal_data import WindowFakeConfig

    cfg = load_config(config)
    target, frames = target_spec(cfg)
    args = (WindowFakeConfig.from_dict(cfg["fakes"]), spec_from_config(cfg).digest(), frames, target)
    assert reuse_mismatches(card.training, cfg, *args) == []
    assert reuse_mismatches(card.training, load_config(CONFIG), *args) == ["seed"]


def test_a_member_of_another_recipe_or_seed_is_refused(tmp_path, capsys):
    config = tmp_path / "ensemble.yaml"
    config.write_text(CONFIG.read_text() + "\nensemble_seeds: [0, 2]\n")
    code = main(["--config", str(config), "--members", "temporal-sbi", str(_member(tmp_path, 1)),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "ensemble_seeds [0, 2]" in capsys.readouterr().err
    other = _member(tmp_path, 2)
    card = json.loads((other / "card.json").read_text())
    card["training"]["model"]["widths"] = [8, 8, 8, 8]
    (other / "card.json").write_text(json.dumps(card))
    code = main(["--config", str(config), "--members", "temporal-sbi", str(other),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "model differ" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.onnx").exists()
