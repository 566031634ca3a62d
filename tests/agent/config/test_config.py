"""Configuration: YAML + VERITY_ environment, strict keys, errors that name key and value."""

import pytest

from agent.config import ConfigError, config_as_yaml, load_config


def test_defaults_are_valid_and_round_trip_through_yaml(tmp_path):
    config = load_config()
    path = tmp_path / "c.yaml"
    path.write_text(config_as_yaml(config))
    assert load_config(path) == config


def test_yaml_file_then_environment_then_overrides(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(
        "streams:\n  - url: rtsp://cam.local/live\n    id: door\n"
        "ingest:\n  analysis_fps: 5\nalerts:\n  stream_key: site:alerts\n"
    )
    monkeypatch.setenv("VERITY_INGEST__ANALYSIS_FPS", "7.5")
    config = load_config(path)
    assert config.streams[0].id == "door" and config.streams[0].kind == "rtsp"
    assert config.ingest.analysis_fps == 7.5  # environment beats the file
    assert config.alerts.stream_key == "site:alerts"
    assert load_config(path, log_level="DEBUG").log_level == "DEBUG"


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("faces:\n  detect_evrey: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "faces.detect_evrey" in str(err.value) and "unknown key" in str(err.value)
    assert str(path) in str(err.value)


def test_bad_value_error_names_key_value_and_env_variable(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scoring:\n  threshold: 1.7\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "scoring.threshold" in message and "1.7" in message
    assert "VERITY_SCORING__THRESHOLD" in message


def test_bad_environment_value_is_reported(monkeypatch):
    monkeypatch.setenv("VERITY_INGEST__QUEUE_SIZE", "lots")
    with pytest.raises(ConfigError) as err:
        load_config()
    assert "ingest.queue_size" in str(err.value) and "'lots'" in str(err.value)


def test_malformed_yaml_and_wrong_top_level(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("streams: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_stream_ids_are_derived_and_must_be_unique():
    config = load_config(streams=[{"url": "rtsp://user:pw@10.0.0.5:554/cam/1"}, {"url": "talk.sdp"}])
    assert [s.id for s in config.streams] == ["10.0.0.5-cam-1", "talk"]
    assert [s.kind for s in config.streams] == ["rtsp", "sdp"]
    with pytest.raises(ConfigError, match="unique"):
        load_config(streams=[{"url": "a.mp4", "id": "x"}, {"url": "b.mp4", "id": "x"}])


def test_detector_plugin_is_chosen_by_type():
    config = load_config(faces={"detector": {"type": "insightface", "models_dir": "/models"}})
    assert config.faces.detector.type == "insightface"
    with pytest.raises(ConfigError, match="faces.detector"):
        load_config(faces={"detector": {"type": "yolo"}})


def test_the_deep_model_decides_by_default_and_can_be_switched_off(tmp_path, monkeypatch):
    models = load_config().models
    assert models.deep == "deep-clip" and models.deep_rule == "fused" and models.temporal is None
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  deep: null\n  temporal: temporal-sbi\n")
    assert load_config(path).models.deep is None
    assert load_config(path).models.temporal == "temporal-sbi"
    monkeypatch.setenv("VERITY_MODELS__DEEP", "none")  # the environment cannot say null
    assert load_config().models.deep is None


def test_the_shipped_example_config_states_the_defaults():
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "configs" / "agent.yaml"
    shipped = load_config(example)
    defaults = load_config()
    assert shipped.models == defaults.models and shipped.scoring == defaults.scoring
