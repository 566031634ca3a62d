"""The shipped alert thresholds hold for the scoring settings they were calibrated with."""

import logging

from agent.config import load_config
from agent.pipeline import Pipeline, runner
from agent.pipeline.scorer import FaceScorer


def test_shipped_cards_were_calibrated_with_the_default_settings(caplog):
    # The deep model (default), the spatial model alone, the spatial and temporal pair.
    for models in ({}, {"deep": None}, {"deep": None, "temporal": "temporal-sbi"}):
        config = load_config(models=models)
        card = FaceScorer(config.models).decision_pack.card
        rolling = card.alert_threshold.measured["rolling"]
        assert rolling["half_life_s"] == config.scoring.half_life_s
        assert rolling["min_duration_s"] == config.scoring.min_duration_s
        assert rolling["analysis_fps"] == config.ingest.analysis_fps
        assert card.alert_threshold.measured["quality"] == config.faces.quality.model_dump()
        with caplog.at_level(logging.WARNING, logger="agent.pipeline"):
            Pipeline(config)
        assert "calibrated" not in caplog.text


def test_other_rolling_settings_are_allowed_with_a_warning_naming_them(caplog, monkeypatch):
    monkeypatch.setattr(runner, "_calibration_warnings", set())  # whatever ran before
    config = load_config(scoring={"half_life_s": 0.8})
    with caplog.at_level(logging.WARNING, logger="agent.pipeline"):
        pipeline = Pipeline(config)
    assert pipeline.threshold == pipeline.scorer.threshold  # still the card's
    assert "half_life_s: 0.3 -> 0.8" in caplog.text and "verity calibrate" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.pipeline"):
        Pipeline(config)  # `verity eval` builds one per file: said once is enough
    assert "calibrated" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="agent.pipeline"):
        Pipeline(load_config(scoring={"half_life_s": 0.8, "threshold": 0.9}))  # the user's own
    assert "calibrated" not in caplog.text


def test_another_quality_gate_is_allowed_with_a_warning_naming_it(caplog, monkeypatch):
    # The gate decides which faces are scored at all, so the false-alarm rate depends on it.
    monkeypatch.setattr(runner, "_calibration_warnings", set())
    default = load_config().faces.quality.max_yaw
    config = load_config(faces={"quality": {"max_yaw": default / 2}})
    with caplog.at_level(logging.WARNING, logger="agent.pipeline"):
        pipeline = Pipeline(config)
    assert pipeline.threshold == pipeline.scorer.threshold
    assert f"faces.quality.max_yaw: {default} -> {default / 2}" in caplog.text
