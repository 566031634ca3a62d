"""The architecture trade command: variant configs and the table it reads from trained cards."""

import json
from pathlib import Path

import pytest

from engines.export import SWEEP
from engines.train.arch_trade import card_body, summarize, variant_config
from engines.train.spatial import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_variant_changes_only_size_architecture_and_schedule():
    cfg = load_config(ROOT / "configs/train/spatial-sbi.yaml")
    out = variant_config(cfg, "A160", epochs=3)
    size, widths, depths = SWEEP["A160"]
    assert (out["input"]["size"], out["model"]["widths"], out["model"]["depths"]) == (
        size, list(widths), list(depths))
    assert out["train"]["epochs"] == 3 and "stages" not in out["train"]
    # Everything else is the shipped recipe: same data, split, seed, augmentation, blends.
    for key in ("seed", "split", "faces", "sbi", "augment"):
        assert out[key] == cfg[key]
    assert {k: v for k, v in out["model"].items() if k not in ("widths", "depths")} == {
        k: v for k, v in cfg["model"].items() if k not in ("widths", "depths")}
    assert "stages" in cfg["train"]  # the base config is left alone
    with pytest.raises(ValueError, match="unknown variant 'Z999'"):
        variant_config(cfg, "Z999", epochs=3)


def test_the_row_and_card_table_carry_the_trained_cards_figures():
    card = json.loads((ROOT / "engines/packs/spatial-sbi/card.json").read_text())
    row = summarize("A128", card)
    validation = card["metrics"]["validation"]
    assert row["self_blend_auc"] == validation["sbi_of_val_reals"]["auc"]
    assert row["gan_face"] == validation["family"]["gan_face"]["video"]["auc"]
    assert row["macs_M"] == round(card["training"]["model"]["macs"] / 1e6)
    body = card_body([row], "python -m engines.train.arch_trade ...")
    line = next(x for x in body.splitlines() if x.startswith("| A128 |"))
    assert f"| {row['self_blend_auc']:.3f} |" in line
    assert line.endswith(f"| {len(card['training']['epochs'])} | {row['train_min']} |")


def test_collected_runs_fill_the_cards_section_in_sweep_order(tmp_path, capsys):
    from engines.train.arch_trade import TITLE, collect, main

    card = (ROOT / "engines/packs/spatial-sbi/card.json").read_text()
    for name in ("A128", "A128-seed1", "B128", "notes"):
        (tmp_path / "work" / name / "pack").mkdir(parents=True)
        if name != "notes":  # a folder that is no variant is ignored
            (tmp_path / "work" / name / "pack" / "card.json").write_text(card)
    rows = collect(tmp_path / "work")
    assert [r["variant"] for r in rows] == ["B128", "A128", "A128 seed 1"]

    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "MODEL_CARD.md").write_text("# a card\n\n## Limitations\n\nsome.\n")
    (pack / "card.json").write_text(card)
    assert main(["--work", str(tmp_path / "work"), "--collect", "--write-card", str(pack)]) == 0
    text = (pack / "MODEL_CARD.md").read_text()
    assert text.index(TITLE) < text.index("## Limitations")
    epochs = len(json.loads(card)["training"]["epochs"])  # the command states how they trained
    assert f"--variants B128,A128 --epochs {epochs}" in text and "--seed N" in text
    assert "| A128 seed 1 | 128 |" in text
    shipped = json.loads(card)
    assert f"| {shipped['name']} {shipped['version']} (this card) |" in text  # the reference row
    assert "| B128 |" in capsys.readouterr().out


def test_collect_with_nothing_trained_is_an_error(tmp_path):
    from engines.train.arch_trade import main

    with pytest.raises(SystemExit) as exc:
        main(["--work", str(tmp_path / "empty"), "--collect"])
    assert exc.value.code == 2


@pytest.mark.parametrize("args, message", [
    (["--variants", "A128,Z999"], "unknown variant"),
    (["--epochs", "0"], "at least 1"),
    (["--variants", "B128", "--config", "no/such.yaml"], "no such file"),
    (["--collect", "--write-card", "no/such/pack"], "not a model pack"),
])
def test_mistakes_are_named_before_any_training(tmp_path, capsys, monkeypatch, args, message):
    from engines.train.arch_trade import main

    monkeypatch.setenv("VERITY_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["--work", str(tmp_path / "work"), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "work").exists()  # nothing was trained


def test_training_needs_a_data_folder(tmp_path, capsys, monkeypatch):
    from engines.train.arch_trade import main

    monkeypatch.delenv("VERITY_DATA_DIR", raising=False)
    with pytest.raises(SystemExit):
        main(["--work", str(tmp_path / "work"), "--variants", "B128"])
    assert "VERITY_DATA_DIR" in capsys.readouterr().err
