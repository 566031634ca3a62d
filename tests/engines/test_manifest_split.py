"""Manifest reading and the split by group."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.manifest import normalize_group, read_manifest, split_by_group

HEADER = "path,label,kind,method,group,source,notes\n"


def _write(tmp_path: Path, rows: list[str]) -> Path:
    (tmp_path / "manifest.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    return tmp_path


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for g in range(40):  # real-only groups, 3 files each
        for f in range(3):
            rows.append(f"real/{g}_{f}.mp4,real,video,,id:{g},src,")
    rows.append("vrt/1.mp4,real,video,,vrt_face:1,src,")
    rows.append('lip/a.mp4,fake,video,lip_sync:Wav2Lip,vrt_face:1 (real source = ../x.mp4),src,')
    rows.append("lip/b.mp4,fake,video,lip_sync:X,vexpress:10(VASA-1 face),src,")
    rows.append('th/c.mp4,fake,video,"talking_head:Y(a, b)",th:c,src,watermark: crop the lower part before use')
    for i in range(5):
        rows.append(f"gan/{i}.jpg,fake,image,gan_face:StyleGAN,synthetic:{i},src,")
    return _write(tmp_path, rows)


def test_paths_and_groups(manifest):
    entries = read_manifest(manifest)
    assert len(entries) == 129
    assert all(e.path.is_absolute() and e.path.parent.parent == manifest.resolve() for e in entries)
    groups = {e.rel: e.group for e in entries}
    assert groups["lip/a.mp4"] == "vrt_face:1"
    assert groups["lip/b.mp4"] == "vexpress:10"
    th = next(e for e in entries if e.rel == "th/c.mp4")
    assert th.watermarked and th.family == "talking_head" and th.method == "talking_head:Y(a, b)"
    assert normalize_group("a:b (note)") == "a:b"


def test_split_never_shares_a_group(manifest):
    entries = read_manifest(manifest)
    split = split_by_group(entries, val_fraction=0.25, seed=0)
    assert not (split.train_groups & split.val_groups)
    assert len(split.train) + len(split.val) == len(entries)
    # Every group with a fake is validation; so is its real.
    assert all(not e.is_fake for e in split.train)
    assert "vrt_face:1" in split.val_groups
    # ~25 % of the 40 real-only groups.
    real_only_val = {g for g in split.val_groups if g.startswith("id:")}
    assert len(real_only_val) == 10


def test_split_is_deterministic_and_seeded(manifest):
    entries = read_manifest(manifest)
    a = split_by_group(entries, seed=0)
    b = split_by_group(list(reversed(entries)), seed=0)
    c = split_by_group(entries, seed=1)
    assert a.val_groups == b.val_groups
    assert a.val_groups != c.val_groups


def test_missing_manifest(tmp_path, monkeypatch):
    monkeypatch.delenv("VERITY_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError):
        read_manifest(None)
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path)


def test_train_fakes_moves_a_share_of_generated_face_groups_to_training(manifest):
    entries = read_manifest(manifest)
    plain = split_by_group(entries, val_fraction=0.25, seed=0)
    split = split_by_group(entries, val_fraction=0.25, seed=0, train_fakes={"gan_face": 0.4})
    trained = [e for e in split.train if e.is_fake]
    assert len(trained) == 2 and all(e.family == "gan_face" for e in trained)
    assert not (split.train_groups & split.val_groups)
    # Groups with a real (and other families) stay validation; real-only groups are unchanged.
    assert "vrt_face:1" in split.val_groups and "vexpress:10" in split.val_groups
    assert {g for g in split.val_groups if g.startswith("id:")} == {
        g for g in plain.val_groups if g.startswith("id:")
    }
    again = split_by_group(list(reversed(entries)), val_fraction=0.25, seed=0,
                           train_fakes={"gan_face": 0.4})
    assert again.train_groups == split.train_groups
    all_in = split_by_group(entries, train_fakes={"gan_face": 1.0})
    assert not any(e.family == "gan_face" for e in all_in.val)
    with pytest.raises(ValueError, match="gan_face"):
        split_by_group(entries, train_fakes={"gan_face": 1.5})
