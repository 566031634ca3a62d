"""The trainers' shared setup: the split a config asks for, and clear errors when it is wrong."""

from __future__ import annotations

import json
from pathlib import Path

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


EXPERIMENTS = Path(__file__).resolve().parents[2] / "configs" / "train" / "experiments"


def _keys(mapping: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in mapping.items():
        out.append(prefix + str(key))
        if isinstance(value, dict):
            out += _keys(value, prefix + str(key) + ".")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    out += _keys(item, prefix + str(key) + "[].")
    return out


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_experiment_names_its_base_and_sets_only_keys_a_trainer_reads(path):
    """An experiment holds only what it changes from a shipped config (`base:`), and each key
    it sets is one the trainers read: a misspelt key would otherwise change nothing, silently."""
    import yaml

    from engines.train.run_setup import read_config

    raw = yaml.safe_load(path.read_text())
    assert "base" in raw, f"{path.name}: no base"
    assert (path.parent / raw["base"]).is_file()
    config = read_config(path)
    assert config["name"] == path.stem and "base" not in config
    source = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "engines").rglob("*.py"))
    own = {k for k in _keys({k: v for k, v in raw.items() if k != "base"})}
    unread = [k for k in own if f'"{k.rsplit(".", 1)[-1].removesuffix("[]")}"' not in source
              and f"'{k.rsplit('.', 1)[-1]}'" not in source
              and not _field_of_a_typed_config(k.rsplit(".", 1)[-1], source)]
    assert not unread, f"{path.name}: no trainer reads {unread}"


def _field_of_a_typed_config(name: str, source: str) -> bool:
    """Typed configs (pydantic) declare their keys as fields: `name: type = ...`."""
    return f"    {name}:" in source
