"""`verity calibrate --write-card` also writes its section into the pack's MODEL_CARD.md."""

from argparse import Namespace

from agent.commands.calibrate import ALERT_SECTION, with_alert_section
from engines.registry import AlertThreshold

CARD = "# model\n\n## Speed\n\nfast\n\n## Limitations\n\n- some\n"


def threshold(value: float) -> AlertThreshold:
    return AlertThreshold(
        value=value, target_alerts_per_hour=0.1, method="replayed real clips",
        measured={
            "real": {"clips": 3, "stream_hours": 0.05, "tracks": 4, "alerts_at_threshold": 0,
                     "bootstrap_alerts_at_threshold": 1, "bootstrap_hours": 100.0,
                     "bootstrap_threshold": 0.8, "extreme_value": {"threshold": 0.81}},
            "fake": {"clips": 5, "alerted": 2, "median_first_alert_s": 1.5},
        },
    )


def test_section_goes_before_limitations_and_is_replaced_not_repeated():
    args = Namespace(manifest="/media/set/manifest.csv", split="validation",
                     target_per_hour=0.1, config="/etc/verity/fused.yaml")
    once = with_alert_section(CARD, threshold(0.81), args)
    assert once.index(ALERT_SECTION) < once.index("## Limitations")
    # The command as a reader re-runs it: the data folder as DATA, the config by its name.
    assert ("verity calibrate --manifest DATA/manifest.csv --split validation "
            "--target-per-hour 0.1 --config fused.yaml\n") in once
    assert "**0.81**" in once and "2 of 5 fake clips alert at it" in once
    again = with_alert_section(once, threshold(0.9), args)
    assert again.count(ALERT_SECTION) == 1
    assert "**0.9**" in again and "**0.81**" not in again
    assert again.endswith("## Limitations\n\n- some\n") and "## Speed\n\nfast" in again


def test_a_run_without_the_default_models_says_so_in_its_command():
    from agent.config import ModelsConfig

    args = Namespace(manifest="/media/set/manifest.csv", split="validation",
                     target_per_hour=0.1, config=None)
    models = ModelsConfig(temporal="temporal-sbi", deep=None)
    text = with_alert_section(CARD, threshold(0.81), args, models=models)
    assert ("VERITY_MODELS__TEMPORAL=temporal-sbi VERITY_MODELS__DEEP=none verity calibrate "
            "--manifest DATA/manifest.csv --split validation --target-per-hour 0.1\n") in text
    # The default models need no setting.
    text = with_alert_section(CARD, threshold(0.81), args, models=ModelsConfig())
    assert "\nverity calibrate --manifest" in text and "VERITY_MODELS" not in text
    # With a --config, the file says which models ran.
    args.config = "/etc/verity/spatial-only.yaml"
    text = with_alert_section(CARD, threshold(0.81), args, models=models)
    assert "\nverity calibrate --manifest DATA/manifest.csv" in text and "VERITY_MODELS" not in text


def test_operating_points_are_tabled_with_their_command():
    from agent.commands.calibrate import _rates

    args = Namespace(manifest="/media/set/manifest.csv", split="validation",
                     target_per_hour=0.1, config=None, operating_points=[1.0, 10.0])
    t = threshold(0.81)
    t.measured["operating_points"] = [
        {"target_alerts_per_hour": 0.1, "threshold": 0.81, "fake_clips": 5, "fake_alerted": 2,
         "median_first_alert_s": 1.5},
        {"target_alerts_per_hour": 1.0, "threshold": 0.7, "fake_clips": 5, "fake_alerted": 3,
         "median_first_alert_s": 1.2},
    ]
    text = with_alert_section(CARD, t, args)
    assert "--target-per-hour 0.1 --operating-points 1,10\n" in text
    assert "| 0.1 | 0.8100 | 2 of 5 | 1.5 |" in text and "| 1 | 0.7000 | 3 of 5 | 1.2 |" in text
    import argparse

    import pytest

    assert _rates("1, 10") == [1.0, 10.0]
    for bad in ("0", "x", "-1,2", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            _rates(bad)

