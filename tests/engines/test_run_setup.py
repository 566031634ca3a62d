"""The trainers' shared setup: the split a config asks for, and clear errors when it is wrong."""

from __future__ import annotations

import json

import pytest

from engines.manifest import ManifestEntry
from engines.train.run_setup import split_and_record, split_rule_text


def _entries(tmp_path):
    out = [ManifestEntry(tmp_path / f"r{i}.mp4", f"r{i}.mp4", "real", "video", "", f"id:{i}")
           for i in range(8)]
    out += [ManifestEntry(tmp_path / f"g{i}.jpg", f"g{i}.jpg", "fake", "image", "gan_face:G",
                          f"synthetic:{i}") for i in range(6)]
    return out


def test_split_is_recorded_with_the_trained_fakes(tmp_path):
    cfg = {"val_fraction": 0.25, "seed": 0, "train_fakes": {"gan_face": 0.5}}
    split = split_and_record(_entries(tmp_path), cfg, tmp_path)
    assert sum(e.is_fake for e in split.train) == 3
    record = json.loads((tmp_path / "split.json").read_text())
    assert record["summary"]["train"]["fake_image"] == 3
    assert "50% of the gan_face-only groups -> train" in split_rule_text(cfg)


def test_a_misspelt_or_malformed_train_fakes_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"no fake-only groups of \['gan_faces'\].*gan_face"):
        split_and_record(_entries(tmp_path), {"train_fakes": {"gan_faces": 0.5}}, tmp_path)
    with pytest.raises(ValueError, match="must map method families to fractions"):
        split_and_record(_entries(tmp_path), {"train_fakes": {"gan_face": "half"}}, tmp_path)
