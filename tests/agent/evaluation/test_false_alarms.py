"""Alert threshold at a target false-alarm rate, with the product's own rolling scorer."""

import itertools
import json
import shutil
import subprocess
import sys

import numpy as np

from agent.config import ScoringConfig
from agent.evaluation.false_alarms import (
    TrackSeries,
    bootstrap_tracks,
    choose_threshold,
    count_alerts,
    extreme_value_threshold,
)
from engines.registry import PACKS_DIR, resolve_pack


def series(probabilities, fps=10.0, track_id=1) -> TrackSeries:
    times = (np.arange(len(probabilities)) / fps).tolist()
    return TrackSeries("clip", track_id, times, [float(p) for p in probabilities])


def noisy_real(seed: int, seconds=60, fps=10.0) -> TrackSeries:
    rng = np.random.default_rng(seed)
    logits = rng.normal(-1.5, 1.0, int(seconds * fps))
    return series(1 / (1 + np.exp(-logits)), fps, seed)


def test_count_alerts_uses_rolling_score_rules():
    scoring = ScoringConfig(half_life_s=0.5, min_duration_s=0.5)
    calm = series([0.1] * 100)
    one_spike = series([0.1] * 50 + [0.99] + [0.1] * 50)  # one odd frame: no alert
    episode = series([0.1] * 50 + [0.95] * 40 + [0.1] * 50)
    assert count_alerts([calm, one_spike], scoring, 0.6) == 0
    assert count_alerts([episode], scoring, 0.6) == 1
    assert count_alerts([episode], scoring, 0.97) == 0


def test_bootstrap_makes_the_requested_hours_from_real_blocks():
    tracks = [noisy_real(i) for i in range(3)]
    streams = bootstrap_tracks(tracks, hours=2.0, block_s=5.0, seed=1)
    hours = sum(s.duration for s in streams) / 3600
    assert 1.9 <= hours <= 2.1
    values = {round(p, 6) for t in tracks for p in t.probabilities}
    assert {round(p, 6) for p in streams[0].probabilities[:500]} <= values


def test_chosen_threshold_clears_every_real_excursion_with_a_margin():
    scoring = ScoringConfig()
    tracks = [noisy_real(i) for i in range(10)]
    # One real clip with a sustained high stretch (a hard real face): it must not alert.
    tracks.append(series([0.2] * 100 + [0.8] * 30 + [0.2] * 100, track_id=99))
    hours = sum(t.duration for t in tracks) / 3600
    choice = choose_threshold(tracks, hours, scoring, target_per_hour=0.1, bootstrap_hours=5)
    assert count_alerts(tracks, scoring, choice.threshold) == 0
    assert choice.threshold > 0.75  # above the hard real stretch's rolling peak
    assert choice.threshold >= choice.bootstrap_threshold
    rates = [row["bootstrap_per_hour"] for row in choice.curve]
    assert rates == sorted(rates, reverse=True)  # rate falls as the threshold rises


def test_extreme_value_fit_extrapolates_beyond_the_sample():
    tracks = [noisy_real(i) for i in range(10)]
    fit = extreme_value_threshold(tracks, ScoringConfig(), target_per_hour=0.1)
    assert fit["windows"] >= 50
    assert fit["threshold"] > fit["max_observed"]


def test_calibrate_command_writes_the_alert_threshold_into_a_pack(tmp_path, real_clip, manipulated_clip):
    pack = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "spatial-sbi", pack)
    (tmp_path / "clips").mkdir()
    shutil.copy(real_clip.path, tmp_path / "clips" / "real.mp4")
    shutil.copy(manipulated_clip.path, tmp_path / "clips" / "fake.mp4")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,method\nclips/real.mp4,real,\nclips/fake.mp4,fake,sbi\n")
    out = tmp_path / "cal.json"
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "calibrate", "--manifest", str(manifest),
         "--bootstrap-hours", "2", "--json", str(out), "--write-card",
         "--operating-points", "10,1"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "VERITY_MODELS__SPATIAL": str(pack),
             "VERITY_MODELS__TEMPORAL": "none", "VERITY_MODELS__DEEP": "none"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["real"]["clips"] == 1 and result["fake"]["clips"] == 1
    assert result["real"]["alerts_at_threshold"] == 0
    (nearest,) = result["real_clips_nearest"]  # the real clip and how high its score came
    assert nearest["file"] == "clips/real.mp4" and 0.0 <= nearest["max_rolling"] <= 1.0
    # Operating points: each rate's threshold chosen the same way; a laxer rate never needs a
    # higher threshold, and the stored one is --target-per-hour's (0.1).
    points = result["operating_points"]
    assert [p["target_alerts_per_hour"] for p in points] == [0.1, 1.0, 10.0]
    assert points[0]["threshold"] == result["threshold"]
    assert points[0]["fake_alerted"] == result["fake"]["alerted"]
    assert all(a["threshold"] >= b["threshold"] for a, b in itertools.pairwise(points))
    assert all(a["fake_alerted"] <= b["fake_alerted"] for a, b in itertools.pairwise(points))
    assert "| 10 |" in (pack / "MODEL_CARD.md").read_text()
    card = resolve_pack(pack).card
    assert card.alert_threshold is not None
    assert card.alert_threshold.value == result["threshold"]
    from agent.config import load_config
    from agent.pipeline import FaceScorer

    assert FaceScorer(load_config(models={"spatial": str(pack), "temporal": None, "deep": None}).models).threshold == result["threshold"]


def test_calibrate_scores_a_row_with_the_pack_its_manifest_names(tmp_path, real_clip):
    """Cross-fitted calibration: a `pack` column makes that row's deep look come from that
    head. Here the named head is made to call everything fake, so the real clip's scores show
    which head judged it."""
    from tests.support.packs import installed_deep_pack

    shipped = installed_deep_pack()
    biased = tmp_path / "folds" / "real-1"
    shutil.copytree(shipped.folder, biased)
    card = json.loads((biased / "card.json").read_text())
    card["calibration"]["bias"] = 30.0
    (biased / "card.json").write_text(json.dumps(card))
    shutil.copy(real_clip.path, tmp_path / "real.mp4")
    manifest = tmp_path / "calibration.csv"
    manifest.write_text("path,label,pack\nreal.mp4,real,folds/real-1\n")
    out = tmp_path / "cal.json"
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "calibrate", "--manifest", str(manifest),
         "--bootstrap-hours", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "VERITY_MODELS__DEEP": "deep-clip",
             "VERITY_MODELS__DEEP_RULE": "deep"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["clips_by_pack"] == {"real/own pack": 1}
    at_half = next(r for r in result["curve"] if r["threshold"] == 0.5)
    assert at_half["observed_alerts"] >= 1  # the shipped head does not alert on this clip


def test_a_manifest_pack_that_is_not_a_pack_is_named(tmp_path, real_clip):
    shutil.copy(real_clip.path, tmp_path / "real.mp4")
    manifest = tmp_path / "calibration.csv"
    manifest.write_text("path,label,pack\nreal.mp4,real,folds/nowhere\n")
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "calibrate", "--manifest", str(manifest)],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "VERITY_MODELS__DEEP": "deep-clip"},
    )
    assert done.returncode != 0
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr
