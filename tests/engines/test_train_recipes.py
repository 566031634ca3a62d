"""The spatial and temporal training configs are typed: a bad key stops the run before any work,
with the key's path; every config the project ships passes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch (the train extra)")

from engines.train import spatial, temporal  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def shipped(kind: str) -> list[Path]:
    return sorted([*CONFIGS.glob(f"{kind}-*.yaml"), *(CONFIGS / "experiments").glob(f"{kind}-*.yaml")])


@pytest.mark.parametrize("path", shipped("spatial"), ids=lambda p: p.name)
def test_every_spatial_config_passes(path):
    assert spatial.load_config(path)["name"]


@pytest.mark.parametrize("path", shipped("temporal"), ids=lambda p: p.name)
def test_every_temporal_config_passes(path):
    assert temporal.load_config(path)["name"]


def experiment(tmp_path: Path, base: str, body: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(f"base: {CONFIGS / base}\nname: x\nversion: 0.0.1\n{body}")
    return path


@pytest.mark.parametrize("body, named", [
    ("faces:\n  frames_per_vid: 8\n", "faces.frames_per_vid"),  # the cache spec would drop it
    ("train:\n  lr: -0.1\n", "train.lr"),
    ("train:\n  stages:\n    - {epoch: 3}\n", "train.stages.0.epoch"),
    ("train:\n  stages:\n    - {augment: {jpeg_prob: 0.5}}\n", "jpeg_prob"),
    ("faces:\n  detector_range: far\n", "faces.detector_range"),
    ("eval:\n  calibration_fpr: 2\n", "eval.calibration_fpr"),
    ("evaluate:\n  batch: 8\n", "evaluate"),
    ("export:\n  flip_average: true\n", "export.flip_average"),  # a temporal-only knob
])
def test_a_bad_spatial_key_is_named(tmp_path, body, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        spatial.load_config(experiment(tmp_path, "spatial-sbi.yaml", body))


@pytest.mark.parametrize("body, named", [
    ("clips:\n  crop_scale: 2.5\n", "clips"),  # the crop comes from `input`
    ("input:\n  frames: 1\n", "input.frames"),
    ("fusion:\n  rule: average\n", "fusion.rule"),
    ("model:\n  widths: [16, 24]\n", "model.widths"),
    ("train:\n  label_smoothing: 0.1\n", "train.label_smoothing"),  # a spatial-only knob
    ("export:\n  flip_average: yes please\n", "export.flip_average"),
])
def test_a_bad_temporal_key_is_named(tmp_path, body, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        temporal.load_config(experiment(tmp_path, "temporal-sbi.yaml", body))


def test_the_command_stops_at_once_with_the_message(tmp_path, capsys):
    bad = experiment(tmp_path, "spatial-sbi.yaml", "train:\n  epochz: 3\n")
    assert spatial.main(["--config", str(bad), "--data", str(tmp_path)]) == 2
    assert "train.epochz" in capsys.readouterr().err
