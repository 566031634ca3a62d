"""Evaluation manifests: reading, checking, the training split, the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.evaluation import (
    ManifestError,
    SplitRule,
    limit_items,
    load_split_rule,
    read_eval_manifest,
    select_split,
)
from engines.manifest import read_manifest, split_by_group


def write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_paths_relative_to_the_csv_and_infers_kind(tmp_path):
    sub = tmp_path / "set"
    sub.mkdir()
    csv = write(sub, "path,label,method,extra\nclips/a.mp4,real,ignored,x\nb.PNG,Fake,gan:x,y\n")
    items = read_eval_manifest(csv)
    assert [i.path for i in items] == [sub / "clips/a.mp4", sub / "b.PNG"]
    assert [i.kind for i in items] == ["video", "image"]
    assert [i.label for i in items] == ["real", "fake"]
    assert items[0].method == "" and items[0].family == "real"  # a real file has no method
    assert items[1].method == "gan:x" and items[1].family == "gan"


def test_fake_without_method_is_grouped_as_unspecified(tmp_path):
    (item,) = read_eval_manifest(write(tmp_path, "path,label\nx.mp4,fake\n"))
    assert item.method_name == "unspecified"


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,verdict\nx.mp4,real\n", "no 'label' column"),
        ("file,label\nx.mp4,real\n", "no 'path' column"),
        ("path,label\nx.mp4,real\ny.mp4,maybe\n", "line 3: label 'maybe' for y.mp4"),
        ("path,label,kind\nx.mp4,real,audio\n", "kind 'audio'"),
        ("path,label\n", "no rows"),
    ],
)
def test_bad_manifests_say_where_and_why(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message):
        read_eval_manifest(write(tmp_path, text))


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ManifestError, match="nope.csv: no such file"):
        read_eval_manifest(tmp_path / "nope.csv")


SPLIT_CSV = "path,label,method,group\n" + "".join(
    f"{g}_{i}.jpg,{'fake' if g.startswith('f') and i == 0 else 'real'},m,{g}\n"
    for g in ["f1", "f2"] + [f"r{k}" for k in range(8)]
    for i in range(2)
)


def test_validation_split_matches_the_trainers_split(tmp_path):
    items = read_eval_manifest(write(tmp_path, SPLIT_CSV))
    config = write(tmp_path, "split:\n  val_fraction: 0.25\n  seed: 3\n", "train.yaml")
    rule = load_split_rule(config)
    val = select_split(items, "validation", rule)
    train = select_split(items, "train", rule)
    groups = {i.group for i in val}
    assert {"f1", "f2"} <= groups and len(groups) == 2 + 2  # every fake group + 25% of 8
    assert not groups & {i.group for i in train} and len(val) + len(train) == len(items)
    assert all(not i.is_fake for i in train)


def test_validation_split_leaves_out_the_trained_generated_faces(tmp_path):
    csv = SPLIT_CSV + "".join(f"gan/{i}.jpg,fake,gan_face:G,synthetic:{i}\n" for i in range(10))
    items = read_eval_manifest(write(tmp_path, csv))
    config = write(tmp_path, "split:\n  seed: 3\n  train_fakes: {gan_face: 0.5}\n", "t.yaml")
    rule = load_split_rule(config)
    assert rule.train_fakes == {"gan_face": 0.5}
    val = select_split(items, "validation", rule)
    train = select_split(items, "train", rule)
    assert sum(i.method == "gan_face:G" for i in val) == 5
    assert sum(i.method == "gan_face:G" for i in train) == 5
    assert {"f1", "f2"} <= {i.group for i in val}
    with pytest.raises(ManifestError, match="train_fakes"):
        load_split_rule(write(tmp_path, "split:\n  train_fakes: {gan_face: 2}\n", "b.yaml"))


def test_split_config_without_split_section_uses_the_trainers_defaults(tmp_path):
    rule = load_split_rule(write(tmp_path, "name: x\n", "train.yaml"))
    assert (rule.val_fraction, rule.seed, rule.from_defaults) == (0.25, 0, True)


def test_split_problems_are_clear(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        load_split_rule(tmp_path / "absent.yaml")
    with pytest.raises(ManifestError, match="val_fraction"):
        load_split_rule(write(tmp_path, "split:\n  val_fraction: lots\n", "bad.yaml"))
    items = read_eval_manifest(write(tmp_path, "path,label\nx.jpg,real\n"))
    with pytest.raises(ManifestError, match="needs a `group`"):
        select_split(items, "validation", load_split_rule(write(tmp_path, "{}\n", "c.yaml")))


def test_limit_draws_both_classes_reproducibly(tmp_path):
    csv = "path,label\n" + "".join(f"r{i}.jpg,real\n" for i in range(20)) + "f.jpg,fake\n"
    items = read_eval_manifest(write(tmp_path, csv))
    picked = limit_items(items, 4, seed=1)
    assert len(picked) == 4 and any(i.is_fake for i in picked)
    assert picked == limit_items(items, 4, seed=1)
    assert [i.line for i in picked] == sorted(i.line for i in picked)  # manifest order kept
    assert limit_items(items, 100) == items


@pytest.mark.data
def test_project_manifest_reads_and_splits_as_training_does(data_dir):
    items = read_eval_manifest(data_dir / "manifest.csv")
    entries = read_manifest(data_dir)
    assert [i.rel for i in items] == [e.rel for e in entries]
    assert [i.kind for i in items] == [e.kind for e in entries]
    expected = split_by_group(entries, val_fraction=0.25, seed=0).val
    val = select_split(items, "validation", SplitRule("test", 0.25, 0, True))
    assert {i.rel for i in val} == {e.rel for e in expected}


@pytest.mark.data
def test_shipped_config_split_is_the_one_the_shipped_pack_was_validated_on(data_dir):
    # `verity eval --split validation` must evaluate exactly the files the pack never saw.
    from engines.registry import resolve_pack

    from tests.support.face_media import skip_if_manifest_grew

    skip_if_manifest_grew(data_dir, "spatial-sbi")
    items = read_eval_manifest(data_dir / "manifest.csv")
    val = select_split(items, "validation", load_split_rule(None))
    card = resolve_pack("spatial-sbi").card.training["data"]["split"]["val"]
    assert len({i.group for i in val}) == card["groups"]
    assert len(val) == card["files"]
    fakes_by_kind = {k: sum(i.is_fake and i.kind == k for i in val) for k in ("video", "image")}
    assert fakes_by_kind == {"video": card["by_label_kind"].get("fake_video", 0),
                             "image": card["by_label_kind"].get("fake_image", 0)}


@pytest.mark.data
def test_deep_config_split_holds_back_the_reals_the_deep_pack_never_saw(data_dir):
    """`verity eval --split validation --split-config configs/train/deep-clip.yaml` keeps on its
    validation side the real-only groups the shipped deep head never trained on."""
    from engines.registry import resolve_pack

    items = read_eval_manifest(data_dir / "manifest.csv")
    config = Path(__file__).resolve().parents[3] / "configs" / "train" / "deep-clip.yaml"
    val = select_split(items, "validation", load_split_rule(config))
    fake_groups = {i.group for i in items if i.is_fake}
    held_back = [i for i in val if i.group not in fake_groups]
    data = resolve_pack("deep-clip").card.training["data"]
    assert len({i.group for i in held_back}) == data["validation_real_groups"]
    # Files with a face (the card counts those): every held-back file but any faceless one.
    assert data["validation_real_files"] <= len(held_back) <= data["validation_real_files"] + 3


def test_a_pack_column_names_a_folder_relative_to_the_csv(tmp_path):
    csv = write(tmp_path, "path,label,pack\na.mp4,real,folds/real-1\nb.mp4,real,\n")
    first, second = read_eval_manifest(csv)
    assert first.pack == tmp_path / "folds" / "real-1"
    assert second.pack is None  # blank: the configured model
