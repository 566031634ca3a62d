"""The deep-pack trainer: typed config, row weights, leave-one-family-out folds, the ONNX head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from engines.manifest import ManifestEntry
from engines.train import deep
from engines.train.deep_head import HeadLayout, export_head

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "deep-clip.yaml"


def entry(rel: str, label: str, kind: str = "video", method: str = "", group: str = "") -> ManifestEntry:
    return ManifestEntry(path=Path("/nonexistent") / rel, rel=rel, label=label, kind=kind,
                         method=method, group=group or rel)


def files_for(rng, spec: list[tuple[str, str, str, str, str]], shift: dict[str, float]) -> list[deep.FileFeatures]:
    """Synthetic files: (rel, label, kind, family, group); fakes of a family sit at `shift`."""
    out = []
    for rel, label, kind, family, group in spec:
        fold = "real" if label == "real" else family
        x = rng.normal(size=(4, 6)).astype(np.float32)
        x[:, 0] += shift.get(fold, 0.0)
        method = "" if label == "real" else f"{family}:tool"
        out.append(deep.FileFeatures(entry(rel, label, kind, method, group), fold, x))
    return out


def paired_spec(n: int, *, lip_sync: bool = True, stills: bool = False) -> list[tuple]:
    """n face swaps with their paired reals (group pair<i>), n real-only videos (r<i>), and
    optionally n lip-sync fakes (ls<i>) and n real stills (s<i>)."""
    spec = []
    for i in range(n):
        spec += [(f"sw{i}", "fake", "video", "face_swap", f"pair{i}"),
                 (f"swr{i}", "real", "video", "", f"pair{i}")]
        if lip_sync:
            spec.append((f"ls{i}", "fake", "video", "lip_sync", f"ls{i}"))
        spec.append((f"r{i}", "real", "video", "", f"r{i}"))
        if stills:
            spec.append((f"still{i}", "real", "image", "", f"s{i}"))
    return spec


def test_the_shipped_config_loads_and_unknown_keys_are_refused(tmp_path):
    cfg = deep.load_config(CONFIG)
    assert cfg.head.layers and set(cfg.head.layers) <= set(cfg.backbone.layers)
    raw = yaml.safe_load(CONFIG.read_text())
    raw["head"]["lerning_rate"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match="lerning_rate"):
        deep.load_config(bad)


def test_a_config_error_stops_the_trainer_before_any_work(tmp_path, capsys):
    raw = yaml.safe_load(CONFIG.read_text())
    raw["head"]["layers"] = ["layer99"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert deep.main(["--config", str(bad), "--data", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    assert "layer99" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_row_weights_count_each_file_once_and_each_family_equally():
    rng = np.random.default_rng(0)
    spec = [(f"g{i}", "fake", "image", "gan_face", f"g{i}") for i in range(30)]
    spec += [("ls", "fake", "video", "lip_sync", "ls"), ("rv", "real", "video", "", "rv"),
             ("rs1", "real", "image", "", "rs1"), ("rs2", "real", "image", "", "rs2")]
    files = files_for(rng, spec, {})
    w = deep.row_weights(files)
    per_file, start = {}, 0
    for f in files:
        per_file[f.entry.rel] = w[start:start + len(f.x)].sum()
        start += len(f.x)
    gan = sum(v for k, v in per_file.items() if k.startswith("g"))
    assert gan == pytest.approx(per_file["ls"])  # 30 GAN stills weigh as much as one lip-sync video
    assert per_file["rv"] == pytest.approx(per_file["rs1"] + per_file["rs2"])  # real kinds equal
    assert gan + per_file["ls"] == pytest.approx(per_file["rv"] + per_file["rs1"] + per_file["rs2"])


def test_each_fold_is_measured_by_a_head_that_never_saw_its_groups():
    rng = np.random.default_rng(1)
    spec = paired_spec(6)
    # Swaps are separable only along feature 0 (shift +3); lip sync along the same axis (+3).
    files = files_for(rng, spec, {"face_swap": 3.0, "lip_sync": 3.0})
    cfg = deep.load_config(CONFIG)
    cfg = cfg.model_copy(update={"families": {"face_swap": ["face_swap"], "lip_sync": ["lip_sync"]}})
    val_real = {"r0", "r1"}
    figures, held_out, _ = deep.leave_one_out(files, val_real, cfg)
    assert figures["face_swap"]["trained_on"] == ["lip_sync"]
    assert figures["lip_sync"]["trained_on"] == ["face_swap"]
    # Test sets: the fold's fakes against validation reals and the left-out groups' reals.
    assert figures["face_swap"]["fakes"] == 6 and figures["face_swap"]["reals"] == 2 + 6
    assert figures["lip_sync"]["reals"] == 2
    assert figures["face_swap"]["auc"] > 0.9  # what one family taught carries to the other here
    assert set(held_out) == {f.entry.rel for f in files if f.y}


def test_calibration_and_threshold_come_from_reals_and_left_out_fakes():
    rng = np.random.default_rng(2)
    reals = [rng.normal(-2, 1, 50) for _ in range(10)]
    fakes = [rng.normal(2, 1, 50) for _ in range(10)]
    calibration = deep.platt(reals, fakes)
    assert calibration.temperature > 0
    p_real = 1 / (1 + np.exp(-(np.concatenate(reals) / calibration.temperature + calibration.bias)))
    threshold = deep.frame_threshold(p_real, 0.01)
    assert np.mean(p_real >= threshold) <= 0.01 and threshold >= 0.5


def test_the_onnx_head_equals_the_fitted_head_linear_or_hidden(tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    layout = HeadLayout(("layer2", "layer3"), ("cls", "mean"))
    tokens = {name: rng.normal(size=(3, 5, 8)).astype(np.float32) for name in ("layer1", "layer2", "layer3")}
    summaries = {"cls": np.stack([tokens[n][:, 0] for n in tokens], 1),
                 "mean": np.stack([tokens[n][:, 1:].mean(1) for n in tokens], 1)}
    x = layout.select(summaries, ["layer1", "layer2", "layer3"])
    linear = deep.Head([(rng.normal(size=(x.shape[1], 1)), np.array([0.3]))],
                       rng.normal(size=x.shape[1]), rng.uniform(0.5, 2, x.shape[1]))
    hidden = deep.Head([(rng.normal(size=(x.shape[1], 5)), rng.normal(size=5)),
                        (rng.normal(size=(5, 1)), np.array([-0.2]))],
                       rng.normal(size=x.shape[1]), rng.uniform(0.5, 2, x.shape[1]))
    for k, head in enumerate((linear, hidden)):
        path = export_head(tmp_path / f"head{k}.onnx", layout, head.layers, head.mean, head.std,
                           width=8)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run(["logits"], {"layer2": tokens["layer2"], "layer3": tokens["layer3"]})
        np.testing.assert_allclose(got, head.logits(x), rtol=1e-4, atol=1e-4)


@pytest.mark.data
def test_validation_reals_are_the_split_rules_real_only_validation_groups(data_dir):
    """The trainer's never-trained-on reals are the ones `verity eval --split validation
    --split-config configs/train/deep-clip.yaml` puts on the validation side."""
    from engines.manifest import read_manifest, split_by_group

    entries = read_manifest(data_dir)
    cfg = deep.load_config(CONFIG)
    val_real = deep.validation_real_groups(entries, cfg.split)
    split = split_by_group(entries, val_fraction=cfg.split.val_fraction, seed=cfg.split.seed)
    real_only_val = {e.group for e in split.val
                     if all(not x.is_fake for x in entries if x.group == e.group)}
    assert val_real == real_only_val and len(val_real) >= 10
    # No fold's head may train on a validation real or on its own family's groups.
    fold_groups = {fold: {e.group for e in entries if e.family in families}
                   for fold, families in cfg.families.items()}
    assert all(groups and not (groups & val_real) for groups in fold_groups.values())


def test_every_training_real_video_is_cross_fitted_by_a_head_that_never_saw_its_group(tmp_path):
    rng = np.random.default_rng(4)
    spec = paired_spec(10, lip_sync=False, stills=True)
    files = files_for(rng, spec, {"face_swap": 3.0})
    cfg = deep.load_config(CONFIG).model_copy(update={
        "families": {"face_swap": ["face_swap"]}, "real_folds": 4})
    val_real = {"r0", "r1"}
    folds = deep.real_cross_fit(files, val_real, cfg)
    assert len(folds) == 4
    held = [groups for _, groups in folds.values()]
    training_real_videos = {f.entry.group for f in files if f.fold == "real"
                            and f.entry.kind == "video" and f.entry.group not in val_real}
    assert set().union(*held) == training_real_videos  # every one, validation never
    assert sum(len(g) for g in held) == len(training_real_videos)  # each in one fold only
    figures, _, _ = deep.leave_one_out(files, val_real, cfg)
    deep.write_eval_manifests(tmp_path, files, val_real, figures,
                              {name: groups for name, (_, groups) in folds.items()})
    from agent.evaluation import read_eval_manifest

    rows = read_eval_manifest(tmp_path / "calibration.csv")
    assert {i.kind for i in rows} == {"video"}
    by_group = {name: groups for name, (_, groups) in folds.items()}
    for item in rows:
        if item.is_fake:
            assert item.pack == tmp_path / "face_swap"  # the head that left its family out
        elif item.group in val_real:
            assert item.pack is None  # the shipped head never trained on these
        else:
            assert item.group in by_group[item.pack.name]
    assert sum(not i.is_fake for i in rows) == len(
        [f for f in files if f.fold == "real" and f.entry.kind == "video"])


def test_no_cross_fitting_when_real_folds_is_zero():
    rng = np.random.default_rng(5)
    files = files_for(rng, [(f"r{i}", "real", "video", "", f"r{i}") for i in range(6)], {})
    cfg = deep.load_config(CONFIG).model_copy(update={"real_folds": 0})
    assert deep.real_cross_fit(files, set(), cfg) == {}


def test_degraded_copies_are_trained_on_but_never_measured(tmp_path):
    from dataclasses import replace

    rng = np.random.default_rng(6)
    spec = paired_spec(6)
    clean = files_for(rng, spec, {"face_swap": 3.0, "lip_sync": 3.0})
    copies = [replace(f, x=f.x + rng.normal(0, 0.1, f.x.shape).astype(np.float32), augmented=True)
              for f in clean]
    cfg = deep.load_config(CONFIG).model_copy(update={
        "families": {"face_swap": ["face_swap"], "lip_sync": ["lip_sync"]}, "real_folds": 2})
    val_real = {"r0", "r1"}
    plain, _, _ = deep.leave_one_out(clean, val_real, cfg)
    figures, held_out, heads = deep.leave_one_out(clean + copies, val_real, cfg)
    for fold in ("face_swap", "lip_sync"):  # the same files measured, not twice as many
        assert (figures[fold]["fakes"], figures[fold]["reals"]) == (plain[fold]["fakes"], plain[fold]["reals"])
    assert len(held_out) == sum(f.y for f in clean)
    caught = deep.caught_beyond_reals(clean + copies, val_real, cfg, heads)
    assert caught["fakes"] == 12 and caught["reals"] == 12
    deep.write_eval_manifests(tmp_path, clean + copies, val_real, figures)
    rows = (tmp_path / "calibration.csv").read_text().splitlines()[1:]
    assert len(rows) == 12 + 2  # every fake video, the validation reals; no copy


def test_a_degraded_crop_is_the_same_picture_softer_and_reproducible():
    from engines.train.deep_features import degrade

    rng = np.random.default_rng(7)
    crop = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    a = degrade(crop, np.random.default_rng(1))
    b = degrade(crop, np.random.default_rng(1))
    assert a.shape == crop.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # Noise loses its fine detail (downscale, JPEG); the mean picture stays.
    assert np.abs(np.diff(a.astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(crop.astype(float), axis=1)).mean()
    assert abs(a.mean() - crop.mean()) < 5


def test_an_experiment_config_holds_only_what_it_changes_from_its_base(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"base: {CONFIG}\nname: deep-exp\nhead:\n  alpha: 3.0\n")
    cfg, base = deep.load_config(experiment), deep.load_config(CONFIG)
    assert cfg.name == "deep-exp" and cfg.head.alpha == 3.0
    assert cfg.head.layers == base.head.layers  # merged key by key, not replaced
    assert cfg.backbone == base.backbone
    experiment.write_text(f"base: {CONFIG}\nhead:\n  alpah: 3.0\n")
    with pytest.raises(Exception, match="alpah"):  # a misspelt key is refused, base or not
        deep.load_config(experiment)
    experiment.write_text("base: exp.yaml\n")
    with pytest.raises(ValueError, match="loops"):
        deep.load_config(experiment)
