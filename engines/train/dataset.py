"""Training pairs: each real face crop with its own self-blend, jittered and augmented alike.

`FaceBank` holds the cached loose crops (uint8) and their mesh landmarks in memory;
`PairDataset` (torch) turns a per-epoch plan of (face index, seed) into pairs. Each sample's
randomness comes from its own seed, so results do not depend on data-loader worker timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.data.cache import load_cached
from engines.faces.align import AlignSpec
from engines.synthesis.sbi import SBIConfig, SBIParams, self_blend
from engines.train.augment import AugmentConfig, augment_pair, jitter_matrix, warp_pair


@dataclass
class FaceBank:
    crops: np.ndarray  # (K, S, S, 3) uint8 loose crops
    mesh: np.ndarray  # (K, 468, 2) float32
    file_index: np.ndarray  # (K,) int
    frame: np.ndarray  # (K,) int
    files: list[str]
    labels: list[str]
    methods: list[str]
    groups: list[str]
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def load(cls, paths: list[Path], *, require_mesh: bool) -> FaceBank:
        crops, mesh, file_index, frame = [], [], [], []
        files, labels, methods, groups, kinds = [], [], [], [], []
        for path in paths:
            d = load_cached(path)
            keep = np.ones(len(d["crops"]), bool)
            if require_mesh:
                keep &= np.isfinite(d["mesh"]).all(axis=(1, 2))
            if not keep.any():
                continue
            fi = len(files)
            files.append(str(d["rel"]))
            labels.append(str(d["label"]))
            methods.append(str(d["method"]))
            groups.append(str(d["group"]))
            kinds.append(str(d["kind"]))
            crops.append(d["crops"][keep])
            mesh.append(d["mesh"][keep])
            frame.append(d["frame"][keep])
            file_index.append(np.full(int(keep.sum()), fi, np.int32))
        if not crops:
            raise ValueError("no faces in the given cache files")
        return cls(
            np.concatenate(crops), np.concatenate(mesh), np.concatenate(file_index),
            np.concatenate(frame), files, labels, methods, groups, kinds,
        )

    def sample_weights(self, power: float = 0.5) -> np.ndarray:
        """Per-face sampling weights: each file's faces share n_file ** (1 - power) weight."""
        counts = np.bincount(self.file_index)
        w = 1.0 / counts[self.file_index].astype(np.float64) ** power
        return w / w.sum()


class PairMaker:
    """Makes one (real, fake) crop pair from a loose crop and its landmarks (numpy only)."""

    def __init__(self, loose: AlignSpec, target: AlignSpec, sbi: SBIConfig, aug: AugmentConfig):
        self.loose, self.target, self.sbi, self.aug = loose, target, sbi, aug

    def __call__(self, crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator):
        """(real, fake, mask): uint8 crops and the float32 blend mask in crop pixels."""
        loose = self.loose
        lo, hi = self.aug.blend_scale
        if (lo, hi) != (1.0, 1.0):
            factor = float(rng.uniform(lo, hi))
            size = max(16, round(loose.size * factor))
            if size != loose.size:
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
                landmarks = np.asarray(landmarks, np.float32) * (size / loose.size)
                loose = AlignSpec(size, loose.scale, loose.center_y)
        params = SBIParams.sample(rng, self.sbi)
        fake, mask = self_blend(crop, landmarks, params)
        matrix = jitter_matrix(loose, self.target, rng, self.aug)
        real_c, fake_c, mask_c = warp_pair([crop, fake, mask], matrix, self.target.size)
        real_c, fake_c = augment_pair([real_c, fake_c], rng, self.aug)
        return real_c, fake_c, mask_c


def epoch_plan(n_samples: int, weights: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """(n_samples, 2) int64 rows of (face index, sample seed) for one epoch."""
    rng = np.random.default_rng([seed, epoch, 7])
    faces = rng.choice(len(weights), size=n_samples, replace=True, p=weights)
    seeds = rng.integers(0, 2**62, size=n_samples)
    return np.stack([faces, seeds], 1).astype(np.int64)


class PairDataset:
    """Map-style dataset (torch protocol) indexed by (face index, seed) rows of an epoch plan.

    The sampler (`PlanSampler`) yields the rows, so persistent data-loader workers (spawned,
    not forked: forking after OpenCV/torch threads have started can deadlock) need the face
    bank only once.
    """

    def __init__(self, bank: FaceBank, maker: PairMaker) -> None:
        self.bank, self.maker = bank, maker

    def __len__(self) -> int:
        return len(self.bank)

    def __getitem__(self, item):
        import torch

        face, seed = int(item[0]), int(item[1])
        rng = np.random.default_rng(seed)
        real, fake, mask = self.maker(self.bank.crops[face], self.bank.mesh[face], rng)
        return torch.from_numpy(np.stack([real, fake])), torch.from_numpy(mask.astype(np.float16))


class PlanSampler:
    """Yields the (face, seed) rows of `epoch_plan` for the current epoch (`set_epoch`)."""

    def __init__(self, weights: np.ndarray, n_samples: int, seed: int) -> None:
        self.weights, self.n_samples, self.seed, self.epoch = weights, n_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self):
        for row in epoch_plan(self.n_samples, self.weights, self.seed, self.epoch):
            yield (int(row[0]), int(row[1]))


def collate_pairs(items):
    """List of ((2, H, W, 3) pair, (H, W) mask) -> crops (2B, H, W, 3) uint8, labels (2B,)
    [0, 1, 0, 1, ...], masks (2B, 1, H, W) float32 (zeros for the reals)."""
    import torch

    crops = torch.cat([pair for pair, _ in items], 0)
    labels = torch.tensor([0.0, 1.0] * len(items))
    size = crops.shape[1:3]
    masks = torch.zeros(len(crops), 1, *size)
    for k, (_, mask) in enumerate(items):
        masks[2 * k + 1, 0] = mask.float()
    return crops, labels, masks


def worker_init(_worker_id: int) -> None:
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
