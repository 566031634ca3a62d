"""engines.metrics on inputs whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines import metrics


def test_auc_perfect_and_reversed():
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    assert metrics.auc(y, s) == 1.0
    assert metrics.auc(y, [-v for v in s]) == 0.0
    assert metrics.average_precision(y, s) == 1.0
    assert metrics.eer(y, s) == 0.0


def test_eer_known_case():
    # Reals 0.1 0.2 0.3 0.6, fakes 0.4 0.7 0.8 0.9: one real above one fake -> EER 0.25.
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    assert metrics.eer(y, s) == pytest.approx(0.25)
    assert metrics.auc(y, s) == pytest.approx(15 / 16)


def test_single_class_is_nan():
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.3]))
    assert math.isnan(metrics.eer([0, 0], [0.2, 0.3]))


def test_accuracy_and_log_loss():
    y = [0, 1, 1, 0]
    p = [0.2, 0.9, 0.4, 0.1]
    assert metrics.accuracy(y, p) == 0.75
    expected = -np.mean(np.log([0.8, 0.9, 0.4, 0.9]))
    assert metrics.log_loss(y, p) == pytest.approx(expected)


def test_frame_and_video_protocol():
    # Frame score = max over faces, video = mean over frames.
    files = ["a", "a", "a", "b", "b"]
    frames = [0, 0, 1, 0, 1]
    probs = [0.2, 0.6, 0.4, 0.1, 0.3]
    fk, fp, vk, vp = metrics.frame_and_video_scores(files, frames, probs)
    assert fk == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert np.allclose(fp, [0.6, 0.4, 0.1, 0.3])
    assert vk == ["a", "b"] and np.allclose(vp, [0.5, 0.2])


def test_summarize_keys():
    out = metrics.summarize([0, 1], [0.1, 0.9], [0.1, 0.9])
    assert out["n"] == 2 and out["auc"] == 1.0 and out["accuracy"] == 1.0
    assert metrics.tpr_at_fpr([0, 0, 1, 1], [0.1, 0.5, 0.4, 0.9], 0.0) == 0.5


def naive_bootstrap(y, s, reps, seed):
    """The textbook resampling the fast one must match: draw each class with replacement."""
    rng = np.random.default_rng(seed)
    y, s = np.asarray(y), np.asarray(s)
    fake, real = s[y == 1], s[y == 0]
    aucs = []
    for _ in range(reps):
        f, r = rng.choice(fake, len(fake)), rng.choice(real, len(real))
        aucs.append(metrics.auc(np.r_[np.ones(len(f)), np.zeros(len(r))], np.r_[f, r]))
    return np.percentile(aucs, [2.5, 97.5])


def test_auc_interval_matches_a_plain_bootstrap_and_holds_the_auc():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(12), np.zeros(30)]
    s = np.r_[rng.normal(1.0, 1.0, 12), rng.normal(0.0, 1.0, 30)]
    low, high = metrics.auc_interval(y, s, reps=4000)
    assert low < metrics.auc(y, s) < high
    np.testing.assert_allclose([low, high], naive_bootstrap(y, s, 4000, 7), atol=0.03)
    assert metrics.auc_interval(y, s, reps=4000) == (low, high)  # seeded: the same each run


def test_auc_interval_narrows_with_more_files_and_degenerates_sensibly():
    rng = np.random.default_rng(4)

    def width(n):
        y = np.r_[np.ones(n), np.zeros(n)]
        s = np.r_[rng.normal(0.7, 1.0, n), rng.normal(0.0, 1.0, n)]
        low, high = metrics.auc_interval(y, s)
        return high - low

    assert width(200) < width(8) / 2
    assert metrics.auc_interval([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == (1.0, 1.0)  # separated
    assert all(math.isnan(v) for v in metrics.auc_interval([1, 1], [0.2, 0.3]))


def test_auc_difference_interval_is_paired():
    from engines.metrics import auc, auc_difference_interval

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(150), np.ones(150)]
    weak = y * 0.3 + rng.normal(size=300)
    strong = y * 2.0 + rng.normal(size=300)
    assert auc_difference_interval(y, weak, weak) == (0.0, 0.0)  # same scores: no difference
    low, high = auc_difference_interval(y, strong, weak)
    assert 0 < low < auc(y, strong) - auc(y, weak) < high
    # Pairing: a score that differs from `weak` by a little noise is not told apart from it,
    # though each AUC's own interval is wide.
    near = weak + rng.normal(scale=0.05, size=300)
    low, high = auc_difference_interval(y, near, weak)
    assert low < 0 < high and high - low < 0.05
