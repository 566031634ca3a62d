"""Detection metrics: AUC, AP, EER, accuracy, log-loss (sklearn where it has them), and the
frame -> video aggregation of the evaluation protocol. No torch.

Scores are "higher = more fake"; labels are 1 for fake, 0 for real.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, np.int64).reshape(-1)
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < int(y.sum()) < len(y)


def auc(labels, scores) -> float:
    """ROC AUC; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s = _check(labels, scores)
    return float(roc_auc_score(y, s)) if _both_classes(y) else float("nan")


def auc_interval(labels, scores, level: float = 0.95, reps: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC, resampling fakes and reals separately
    (each resample keeps both class sizes); (NaN, NaN) with one class. Resample the
    independent unit (files, not the frames of one file, which move together).

    Each resample's AUC is w_fake . P . w_real / (n_fake n_real), where P[i, j] is 1 when fake i
    outscores real j (0.5 on a tie) and w are multinomial counts: no re-sort per resample."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan"), float("nan")
    fake, real = s[y == 1], s[y == 0]
    wins = (fake[:, None] > real[None, :]) + 0.5 * (fake[:, None] == real[None, :])
    rng = np.random.default_rng(seed)
    w_fake = rng.multinomial(len(fake), np.full(len(fake), 1 / len(fake)), size=reps)
    w_real = rng.multinomial(len(real), np.full(len(real), 1 / len(real)), size=reps)
    aucs = ((w_fake @ wins) * w_real).sum(1) / (len(fake) * len(real))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def auc_difference_interval(labels, scores_a, scores_b, level: float = 0.95, reps: int = 2000,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of AUC(a) - AUC(b) for two scores of the same samples,
    each resample shared by both (paired), fakes and reals resampled separately as in
    `auc_interval`; (NaN, NaN) with one class."""
    y, a = _check(labels, scores_a)
    _, b = _check(labels, scores_b)
    if not _both_classes(y):
        return float("nan"), float("nan")

    def wins(s):
        fake, real = s[y == 1], s[y == 0]
        return (fake[:, None] > real[None, :]) + 0.5 * (fake[:, None] == real[None, :])

    n_fake, n_real = int((y == 1).sum()), int((y == 0).sum())
    rng = np.random.default_rng(seed)
    w_fake = rng.multinomial(n_fake, np.full(n_fake, 1 / n_fake), size=reps)
    w_real = rng.multinomial(n_real, np.full(n_real, 1 / n_real), size=reps)
    diffs = ((w_fake @ (wins(a) - wins(b))) * w_real).sum(1) / (n_fake * n_real)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(high)


def average_precision(labels, scores) -> float:
    from sklearn.metrics import average_precision_score

    y, s = _check(labels, scores)
    return float(average_precision_score(y, s)) if _both_classes(y) else float("nan")


def eer(labels, scores) -> float:
    """Equal error rate: where the false-positive and false-negative rates cross."""
    from sklearn.metrics import roc_curve

    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    # Interpolate between the two ROC points around the crossing.
    if i + 1 < len(fpr) and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        d0, d1 = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        t = d0 / (d0 - d1)
        return float(fpr[i] + t * (fpr[i + 1] - fpr[i]))
    return float((fpr[i] + fnr[i]) / 2)


def accuracy(labels, probabilities, threshold: float = 0.5) -> float:
    from sklearn.metrics import accuracy_score

    y, p = _check(labels, probabilities)
    return float(accuracy_score(y, p >= threshold)) if len(y) else float("nan")


def log_loss(labels, probabilities, eps: float = 1e-6) -> float:
    from sklearn.metrics import log_loss as sk_log_loss

    y, p = _check(labels, probabilities)
    if not len(y):
        return float("nan")
    return float(sk_log_loss(y, np.clip(p, eps, 1 - eps), labels=[0, 1]))


def tpr_at_fpr(labels, scores, fpr: float) -> float:
    """True-positive rate at the highest threshold whose false-positive rate is <= fpr."""
    from sklearn.metrics import roc_curve

    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    f, t, _ = roc_curve(y, s)
    ok = f <= fpr
    return float(t[ok].max()) if ok.any() else 0.0


def summarize(labels, scores, probabilities=None, threshold: float = 0.5) -> dict:
    """AUC, AP, EER (and accuracy / log-loss when probabilities are given), plus counts."""
    y, s = _check(labels, scores)
    out = {
        "n": int(len(y)),
        "n_fake": int(y.sum()),
        "n_real": int(len(y) - y.sum()),
        "auc": auc(y, s),
        "ap": average_precision(y, s),
        "eer": eer(y, s),
    }
    if probabilities is not None:
        out["accuracy"] = accuracy(y, probabilities, threshold)
        out["log_loss"] = log_loss(y, probabilities)
    return out


def sigmoid(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def aggregate(keys: Iterable, values, how: str = "mean") -> tuple[list, np.ndarray]:
    """Group values by key (in first-seen order) and reduce each group by mean or max."""
    keys = list(keys)
    values = np.asarray(values, np.float64)
    order: dict = {}
    for k in keys:
        order.setdefault(k, len(order))
    index = np.array([order[k] for k in keys], np.int64)
    out = np.full(len(order), -np.inf if how == "max" else 0.0)
    if how == "max":
        np.maximum.at(out, index, values)
    elif how == "mean":
        np.add.at(out, index, values)
        out /= np.bincount(index, minlength=len(order))
    else:
        raise ValueError(f"unknown aggregation {how!r}")
    return list(order), out


def frame_and_video_scores(
    files: list[str], frames: list[int], probabilities
) -> tuple[list[tuple[str, int]], np.ndarray, list[str], np.ndarray]:
    """The protocol: per frame the max over its faces, per video the mean over its frames.

    Returns (frame keys, frame probabilities, video keys, video probabilities).
    """
    frame_keys, frame_p = aggregate(zip(files, frames), probabilities, "max")
    video_keys, video_p = aggregate([k[0] for k in frame_keys], frame_p, "mean")
    return frame_keys, frame_p, video_keys, video_p
