"""Rolling score: smoothing, threshold, hysteresis, minimum duration."""

from agent.config import ScoringConfig
from agent.scoring.rolling import RollingScore, Transition, Verdict


def feed(score: RollingScore, probabilities, fps=10.0, start=0.0):
    events = []
    for i, p in enumerate(probabilities):
        t = start + i / fps
        event = score.update(t, p)
        if event is not None:
            events.append((round(t, 3), event))
    return events


def make(**kw) -> RollingScore:
    config = ScoringConfig(half_life_s=0.5, min_duration_s=0.5, clear_margin=0.15, min_frames=3, **kw)
    return RollingScore(config, threshold=0.5)


def test_sustained_fake_raises_one_new_alert_within_two_seconds():
    score = make()
    events = feed(score, [0.05] * 20 + [0.95] * 30)
    news = [e for e in events if e[1] is Transition.NEW]
    assert len(news) == 1
    onset = 2.0
    assert 0 < news[0][0] - onset <= 2.0
    assert score.verdict is Verdict.FAKE
    assert score.started_at is not None and score.started_at >= onset


def test_one_odd_frame_neither_raises_nor_clears():
    score = make()
    assert feed(score, [0.05] * 10 + [1.0] + [0.05] * 10) == []
    assert score.verdict is Verdict.REAL
    score = make()
    events = feed(score, [0.95] * 30 + [0.0] + [0.95] * 10)
    assert [e[1] for e in events] == [Transition.NEW]


def test_hysteresis_clears_only_well_below_threshold_and_after_min_duration():
    score = make()
    feed(score, [0.95] * 30)
    assert score.active
    # Hovering just under the threshold (above threshold - margin) keeps the alert.
    events = feed(score, [0.42] * 40, start=3.0)
    assert Transition.END not in [e[1] for e in events]
    assert score.active
    events = feed(score, [0.0] * 30, start=7.0)
    assert [e[1] for e in events if e[1] is not Transition.UPDATE] == [Transition.END]
    assert not score.active and score.verdict is Verdict.REAL


def test_quality_failures_do_not_move_the_score_and_leave_it_unknown():
    score = make()
    feed(score, [None] * 50)
    assert score.value is None and score.unknown_frames == 50
    assert score.verdict is Verdict.UNKNOWN  # never "real" without judging
    feed(score, [0.9, None, None, 0.9], start=5.0)
    assert score.judged_frames == 2 and score.verdict is Verdict.UNKNOWN


def test_smoothing_uses_stream_time_not_frame_count():
    fast, slow = make(), make()
    feed(fast, [0.0] * 5 + [1.0] * 30, fps=30)  # 1 s of fake at 30 fps
    feed(slow, [0.0] * 5 + [1.0] * 5, fps=5)  # 1 s of fake at 5 fps
    assert abs(fast.value - slow.value) < 0.05


def test_updates_are_periodic_while_active_and_close_ends_the_episode():
    score = make(update_every_s=1.0)
    events = feed(score, [0.95] * 60)
    kinds = [e[1] for e in events]
    assert kinds[0] is Transition.NEW and kinds.count(Transition.UPDATE) >= 4
    assert score.close() is Transition.END
    assert score.close() is None


def test_calibration_mismatch_names_each_changed_setting():
    from agent.scoring.rolling import calibration_mismatch, rolling_settings

    calibrated = rolling_settings(ScoringConfig(half_life_s=0.3), 10.0)
    assert calibration_mismatch(calibrated, ScoringConfig(half_life_s=0.3), 10.0) == []
    changed = calibration_mismatch(calibrated, ScoringConfig(half_life_s=0.5, min_duration_s=1.0), 5.0)
    assert changed == ["half_life_s: 0.3 -> 0.5", "min_duration_s: 0.5 -> 1.0", "analysis_fps: 10.0 -> 5.0"]
    assert calibration_mismatch({}, ScoringConfig(half_life_s=0.5), 10.0) == []  # an older card
    garbled = calibrated | {"half_life_s": "fast"}
    assert calibration_mismatch(garbled, ScoringConfig(half_life_s=0.3), 10.0) == ["half_life_s: fast -> 0.3"]
