"""Validation of a spatial model: scores per face, the frame/video protocol, calibration,
threshold, and the demo sanity check. Scores come from the exported ONNX (what ships).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engines import metrics
from engines.faces.align import AlignSpec
from engines.registry import calibrated
from engines.synthesis.sbi import SBIConfig, SBIParams, self_blend
from engines.train.augment import center_crop
from engines.train.dataset import FaceBank

Scorer = Callable[[np.ndarray], np.ndarray]  # uint8 crops (N, H, W, 3) -> logits (N,)


def score_bank(bank: FaceBank, loose: AlignSpec, target: AlignSpec, scorer: Scorer,
               batch: int = 256) -> np.ndarray:
    """Logits of every face's run-time-style crop (centre crop of the loose crop)."""
    out = []
    for i in range(0, len(bank), batch):
        out.append(scorer(center_crop(bank.crops[i : i + batch], loose, target)))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def sbi_crops(bank: FaceBank, loose: AlignSpec, target: AlignSpec, seed: int,
              config: SBIConfig | None = None, limit: int | None = None) -> np.ndarray:
    """Self-blends of the bank's real faces (with mesh), centre-cropped; seeded."""
    rng = np.random.default_rng([seed, 99])
    idx = np.flatnonzero(np.isfinite(bank.mesh).all(axis=(1, 2)))
    if limit is not None and len(idx) > limit:
        idx = np.sort(rng.choice(idx, limit, replace=False))
    fakes = np.empty((len(idx),) + bank.crops.shape[1:], np.uint8)
    for j, i in enumerate(idx):
        fakes[j], _ = self_blend(bank.crops[i], bank.mesh[i], SBIParams.sample(rng, config))
    return center_crop(fakes, loose, target)


def fit_calibration(real_logits: np.ndarray, fake_logits: np.ndarray) -> tuple[float, float]:
    """Platt scaling p = sigmoid(logit / T + b) fitted by logistic regression (T > 0)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([real_logits, fake_logits]).reshape(-1, 1).astype(np.float64)
    y = np.concatenate([np.zeros(len(real_logits)), np.ones(len(fake_logits))])
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(x, y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if a <= 1e-3:  # a degenerate fit: keep the raw logits
        return 1.0, 0.0
    return 1.0 / a, b


def calibrate(logits, temperature: float, bias: float) -> np.ndarray:
    return calibrated(logits, temperature, bias)


def pick_threshold(real_frame_probs: np.ndarray, max_fpr: float, floor: float = 0.5) -> float:
    """Lowest threshold >= floor with at most max_fpr of real frames at or above it."""
    probs = np.sort(np.asarray(real_frame_probs, np.float64))
    if not len(probs):
        return floor
    allowed = int(math.floor(max_fpr * len(probs)))
    # The (allowed+1)-th highest real score must fall strictly below the threshold.
    kth = probs[len(probs) - allowed - 1]
    threshold = max(floor, float(np.nextafter(kth, 1.0)))
    return float(min(threshold, 0.995))


def protocol_metrics(bank: FaceBank, probs: np.ndarray, threshold: float) -> dict:
    """Frame- and video-level metrics, overall and per method family / method.

    Per frame the max over faces; per video (or still) the mean over frames. Each fake subset
    is compared against all validation reals of the same kind (videos vs real videos, stills vs
    real stills); "all" pools every kind.
    """
    files = [bank.files[i] for i in bank.file_index]
    frame_keys, frame_p, video_keys, video_p = metrics.frame_and_video_scores(
        files, bank.frame.tolist(), probs
    )
    info = {f: i for i, f in enumerate(bank.files)}

    def attrs(name):
        i = info[name]
        return bank.labels[i] == "fake", bank.methods[i], bank.kinds[i]

    f_attr = [attrs(k[0]) for k in frame_keys]
    v_attr = [attrs(k) for k in video_keys]

    def subset(attr_list, scores, kind, method_pred):
        mask = [(not fake and (kind is None or k == kind)) or (fake and (kind is None or k == kind) and method_pred(m))
                for fake, m, k in attr_list]
        mask = np.array(mask, bool)
        y = np.array([a[0] for a in attr_list], int)[mask]
        return y, np.asarray(scores)[mask]

    def entry(kind, pred):
        yf, sf = subset(f_attr, frame_p, kind, pred)
        yv, sv = subset(v_attr, video_p, kind, pred)
        fr = metrics.summarize(yf, sf, sf, threshold)
        vi = metrics.summarize(yv, sv, sv, threshold)
        return {"frame": _round(fr), "video": _round(vi)}

    out: dict = {"overall": {}, "family": {}, "method": {}}
    out["overall"]["all"] = entry(None, lambda m: True)
    out["overall"]["videos"] = entry("video", lambda m: True)
    out["overall"]["stills"] = entry("image", lambda m: True)
    fams = sorted({(metrics_family(m), k) for fake, m, k in v_attr if fake})
    for fam, kind in fams:
        out["family"][fam] = entry(kind, lambda m, fam=fam: metrics_family(m) == fam)
    meths = sorted({(m, k) for fake, m, k in v_attr if fake})
    for meth, kind in meths:
        out["method"][meth] = entry(kind, lambda m, meth=meth: m == meth)
    # Real false-positive rates at the shipped threshold.
    real_f = np.array([p for (fake, _, _), p in zip(f_attr, frame_p) if not fake])
    real_v = np.array([p for (fake, _, _), p in zip(v_attr, video_p) if not fake])
    out["real_fpr_at_threshold"] = {
        "frames": round(float((real_f >= threshold).mean()), 4) if len(real_f) else None,
        "videos_and_stills": round(float((real_v >= threshold).mean()), 4) if len(real_v) else None,
    }
    out["per_file"] = {
        k: {"p": round(float(p), 4), "fake": a[0], "method": a[1], "group": bank.groups[info[k]]}
        for k, p, a in zip(video_keys, video_p, v_attr)
    }
    return out


def metrics_family(method: str) -> str:
    from engines.manifest import method_family

    return method_family(method)


def _round(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) and not math.isnan(v) else (None if isinstance(v, float) else v))
            for k, v in d.items()}


def demo_sanity(scorer: Scorer, spec: AlignSpec, temperature: float, bias: float,
                seed: int = 0, n_fakes: int = 6, jpeg_quality: int = 75) -> dict:
    """skimage's astronaut: the real face and self-blends of it (moderate-to-strong, then
    JPEG q75), cropped with the model's AlignSpec exactly as the agent does."""
    import cv2
    import skimage.data

    from engines.faces import align_faces, create_detector
    from engines.faces.align import alignment_matrix, transform_points
    from engines.faces.detectors import MediaPipeDetectorConfig
    from engines.faces.mesh import FaceMesh

    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    det = create_detector(MediaPipeDetectorConfig()).detect(image)
    if not len(det):
        return {"error": "no face detected"}
    kps = det.keypoints[int(np.argmax(det.interocular))]
    mesh = FaceMesh().largest(image)

    def score(img):
        crop = align_faces(img, kps[None], spec)
        return float(calibrate(scorer(crop), temperature, bias)[0])

    def jpeg(img):
        return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1], 1)

    rng = np.random.default_rng(seed)
    strong = SBIConfig().strong()
    fakes = []
    for _ in range(n_fakes):
        fake, _ = self_blend(image, mesh, SBIParams.sample(rng, strong))
        fakes.append(score(jpeg(fake)))
    _ = transform_points, alignment_matrix
    return {
        "real": round(score(image), 4),
        "real_jpeg75": round(score(jpeg(image)), 4),
        "sbi_jpeg75": [round(p, 4) for p in fakes],
        "protocol": f"skimage.data.astronaut(), mediapipe detector, align_faces({spec}); fakes: "
        f"engines.synthesis.sbi.self_blend with SBIConfig().strong() (blend ratio 0.75-1), "
        f"seed {seed}, on the full image with face-mesh landmarks, then JPEG q{jpeg_quality}.",
    }
