"""Fit the spatial pack's out-of-distribution check (engines.ood) after export, and measure it.

Embeddings come from the exported ONNX (its `embedding` output) on ONNX Runtime, as the agent
reads them. The Gaussian is fitted on the training faces (clean centre crops); the threshold is
the `quantile` of the distances of half of the validation real groups; the other half measures
how many real faces the check refuses. Also measured: the share refused among the validation
fakes per method family, and among crops that are not faces at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from engines.ood import REASON, fit
from engines.registry import OODSpec

log = logging.getLogger("verity.train.ood")


def onnx_embeddings(session, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    outs = [session.run(["embedding"], {"crops": np.ascontiguousarray(crops[i : i + batch])})[0]
            for i in range(0, len(crops), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def non_face_crops(size: int, seed: int) -> dict[str, np.ndarray]:
    """Inputs that are not faces: noise, flat colour, and photos shipped with scikit-image."""
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = []
    for name in ("coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"):
        image = cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
        h, w = image.shape[:2]
        for _ in range(8):  # random square windows of each photo
            side = int(rng.uniform(0.3, 0.9) * min(h, w))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            photos.append(cv2.resize(image[y : y + side, x : x + side], (size, size),
                                     interpolation=cv2.INTER_AREA))
    return {
        "uniform_noise": rng.integers(0, 256, (32, size, size, 3), dtype=np.uint8),
        "flat_colour": np.repeat(rng.integers(0, 256, (32, 1, 1, 3), dtype=np.uint8), size, 1).repeat(size, 2),
        "photos_without_faces": np.stack(photos),
    }


def _half(group: str) -> int:
    return hashlib.sha1(group.encode()).digest()[0] & 1


def fit_ood_check(session, train_bank, val_bank, val_real_bank, loose, target, *, quantile: float,
                  pack_dir: Path, seed: int = 0, file_name: str = "ood.npz",
                  extra_train=None) -> OODSpec:
    """extra_train: more training faces (the trained fakes) inside the distribution: the
    model has seen them, so it can judge them."""
    from engines.train.augment import center_crop

    def embed(bank, idx=None) -> np.ndarray:
        crops = bank.crops if idx is None else bank.crops[idx]
        out = []
        for i in range(0, len(crops), 256):  # centre-crop in chunks: the banks are large
            out.append(onnx_embeddings(session, center_crop(crops[i : i + 256], loose, target)))
        return np.concatenate(out)

    train = embed(train_bank)
    if extra_train is not None:
        train = np.concatenate([train, embed(extra_train)])
    halves = np.array([_half(val_real_bank.groups[f]) for f in val_real_bank.file_index])
    fit_idx, check_idx = np.flatnonzero(halves == 0), np.flatnonzero(halves == 1)
    if len(fit_idx) == 0 or len(check_idx) == 0:  # too few groups to halve: use all for both
        fit_idx = check_idx = np.arange(len(val_real_bank))
    stats, measured = fit(train, embed(val_real_bank, fit_idx), quantile)
    stats.save(pack_dir / file_name)

    refused: dict[str, float | int] = {
        "val_real_faces_other_half": round(float(stats.out_of_distribution(embed(val_real_bank, check_idx)).mean()), 4),
        "n_val_real_faces_other_half": int(len(check_idx)),
    }
    fake_idx = np.array([i for i, f in enumerate(val_bank.file_index) if val_bank.labels[f] == "fake"])
    if len(fake_idx):
        flags = stats.out_of_distribution(embed(val_bank, fake_idx))
        families = np.array([val_bank.methods[val_bank.file_index[i]].split(":")[0] for i in fake_idx])
        refused["val_fake_faces_by_family"] = {
            fam: round(float(flags[families == fam].mean()), 4) for fam in sorted(set(families))
        }
    for name, crops in non_face_crops(target.size, seed).items():
        refused[name] = round(float(stats.out_of_distribution(onnx_embeddings(session, crops)).mean()), 4)
    measured["refused_share"] = refused
    log.info("out-of-distribution check: %s", json.dumps(measured))
    method = (
        "Mahalanobis distance of the exported `embedding` output (global average pool of the last "
        f"stage) to a Gaussian fitted (Ledoit-Wolf shrinkage) on the {measured['n_train']} training "
        f"face crops; threshold: the {quantile:.1%} quantile of the distances of the validation "
        "real faces of half of the validation groups (the other half measures the refusal rate). "
        f"Refused faces get the verdict unknown (reason {REASON})."
    )
    return OODSpec(file=file_name, method=method, measured=measured)
