"""models.stills: a photo is judged by the stills pack (its crop, calibration, threshold and
out-of-distribution check); video frames never are."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from agent.config import load_config
from agent.pipeline.scorer import FaceScorer
from agent.scoring.report import score_image, score_video
from engines.registry import ModelCard, PackError, resolve_pack, write_card


def stills_pack(folder, bias: float, threshold: float) -> str:
    """A copy of the shipped spatial pack with its own calibration bias and threshold."""
    shipped = resolve_pack("spatial-sbi")
    shutil.copytree(shipped.folder, folder)
    card = ModelCard.model_validate(json.loads((folder / "card.json").read_text()))
    card = card.model_copy(update={
        "name": "stills-test", "threshold": threshold, "alert_threshold": None,
        "calibration": card.calibration.model_copy(update={"bias": bias}),
    })
    write_card(folder, card)
    return str(folder)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), astronaut)
    return path


def test_a_photo_is_judged_by_the_stills_pack_at_its_own_threshold(tmp_path, photo, detector):
    plain = load_config()
    alone = score_image(photo, plain, detector, FaceScorer(plain.models))
    assert alone.verdict == "real" and "stills" not in alone.models
    # A stills pack that calls every face fake (calibration bias +8) at threshold 0.6.
    config = load_config(models={"stills": stills_pack(tmp_path / "stills", 8.0, 0.6)})
    scorer = FaceScorer(config.models)
    report = score_image(photo, config, detector, scorer)
    assert report.models["stills"] == "stills-test@" + resolve_pack("spatial-sbi").card.version
    assert report.threshold == pytest.approx(0.6) and report.verdict == "fake"
    (track,) = report.tracks
    assert set(track.mean_by_model) == {"stills"} and track.mean_probability > 0.99


def test_video_frames_never_use_the_stills_pack(tmp_path, real_clip):
    config = load_config(models={"stills": stills_pack(tmp_path / "stills", 8.0, 0.6)},
                         ingest={"analysis_fps": 5})
    report = score_video(real_clip.path, config)
    assert report.verdict == "real"
    assert all("stills" not in t.mean_by_model for t in report.tracks)


def test_the_stills_setting_is_named_when_its_pack_is_wrong(tmp_path):
    with pytest.raises(PackError, match=r"models.stills: .*role 'temporal', not 'spatial'"):
        FaceScorer(load_config(models={"stills": "temporal-sbi"}).models)
    with pytest.raises(PackError, match="models.stills: model pack 'nope'"):
        FaceScorer(load_config(models={"stills": "nope"}).models)
    assert load_config(models={"stills": "none"}).models.stills is None


def test_noise_is_unknown_to_the_stills_pack_too(tmp_path):
    scorer = FaceScorer(load_config(models={"stills": stills_pack(tmp_path / "s", 0.0, 0.7)}).models)
    noise = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    _, flags = scorer.still_judgements(noise)
    assert flags.all()
