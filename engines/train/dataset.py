"""Training pairs: each real face crop with its own self-blend, jittered and augmented alike.

`FaceBank` holds the cached loose crops (uint8) and their mesh landmarks in memory;
`PairDataset` (torch) turns a per-epoch plan of (face index, seed) into pairs. Each sample's
randomness comes from its own seed, so results do not depend on data-loader worker timing.
With a bank of trained fakes (fully generated faces), a share of the pairs put one of those
in place of the self-blend: the pair still shares every augmentation, so resolution, blur and
JPEG quality are matched between the classes and cannot predict the label.
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
    interocular: np.ndarray | None = None  # (K,) eye distance in the source frame, pixels

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def load(cls, paths: list[Path], *, require_mesh: bool) -> FaceBank:
        crops, mesh, file_index, frame, interocular = [], [], [], [], []
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
            interocular.append(np.asarray(d["interocular"], np.float32)[keep])
            file_index.append(np.full(int(keep.sum()), fi, np.int32))
        if not crops:
            raise ValueError("no faces in the given cache files")
        return cls(
            np.concatenate(crops), np.concatenate(mesh), np.concatenate(file_index),
            np.concatenate(frame), files, labels, methods, groups, kinds,
            np.concatenate(interocular),
        )

    def sample_weights(self, power: float = 0.5) -> np.ndarray:
        """Per-face sampling weights: each file's faces share n_file ** (1 - power) weight."""
        counts = np.bincount(self.file_index)
        w = 1.0 / counts[self.file_index].astype(np.float64) ** power
        return w / w.sum()


def inside_image(crop: np.ndarray) -> np.ndarray:
    """float32 (H, W): 1 where a cached crop holds picture, 0 in the black padding beyond
    the source image's edge (cropping pads with exact zeros)."""
    return (crop.max(axis=2) > 0).astype(np.float32)


def match_colour(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`image` with the per-channel Lab mean and spread of `reference` (Reinhard transfer)."""
    src = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    ref = cv2.cvtColor(reference, cv2.COLOR_BGR2LAB).astype(np.float32)
    s_mean, s_std = src.mean(axis=(0, 1)), src.std(axis=(0, 1)) + 1e-3
    r_mean, r_std = ref.mean(axis=(0, 1)), ref.std(axis=(0, 1)) + 1e-3
    out = (src - s_mean) * (r_std / s_std) + r_mean
    return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


class FakePairMaker:
    """(real, trained fake) pairs: each face jittered on its own, then augmented alike.

    A self-blend shares its real's colours; a generated face does not, and a generator's
    palette (warm, saturated portraits) would become the cue, so that real photos in the same
    light read as fake. With probability `colour_match_p` one face of the pair (either, at
    random) takes the other's Lab colour statistics first.
    """

    def __init__(self, loose: AlignSpec, target: AlignSpec, aug: AugmentConfig,
                 colour_match_p: float = 0.0):
        self.loose, self.target, self.aug = loose, target, aug
        self.colour_match_p = colour_match_p

    def __call__(self, real: np.ndarray, fake: np.ndarray, rng: np.random.Generator):
        size = self.target.size
        real_m = jitter_matrix(self.loose, self.target, rng, self.aug)
        fake_m = jitter_matrix(self.loose, self.target, rng, self.aug)
        real_c, real_in = warp_pair([real, inside_image(real)], real_m, size)
        fake_c, fake_in = warp_pair([fake, inside_image(fake)], fake_m, size)
        # Where either face's picture ended (a generated still is a tight portrait: its crop
        # runs off the image, padded black), both go black: the padding must not be the cue.
        both_in = np.minimum(real_in, fake_in)[..., None]
        real_c = (real_c * both_in + 0.5).astype(np.uint8)
        fake_c = (fake_c * both_in + 0.5).astype(np.uint8)
        if self.colour_match_p > 0 and rng.random() < self.colour_match_p:
            if rng.random() < 0.5:
                fake_c = match_colour(fake_c, real_c)
            else:
                real_c = match_colour(real_c, fake_c)
        real_c, fake_c = augment_pair([real_c, fake_c], rng, self.aug)
        return real_c, fake_c


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


class PairDataset:
    """Map-style dataset (torch protocol) indexed by the (face index, seed) rows of an epoch
    plan (engines.train.sampling)."""

    def __init__(self, bank: FaceBank, maker: PairMaker, fakes: FaceBank | None = None,
                 fake_share: float = 0.0, fake_maker: FakePairMaker | None = None,
                 fake_partner: str = "any", partner_min_interocular: float = 0.0) -> None:
        """fake_partner: which reals face a trained fake: "any" (any real face) or "same_kind"
        (a real of the fake's kind: stills against stills). partner_min_interocular: only
        real faces at least this large in their source (eye distance, px) face a trained fake,
        so that a sharp generated still never meets an upsampled, blurrier small face, whose
        softness would become the cue."""
        if fake_share > 0 and (fakes is None or fake_maker is None or not len(fakes)):
            raise ValueError("fake_share > 0 needs a bank of trained fakes (split.train_fakes)")
        if fake_partner not in ("any", "same_kind"):
            raise ValueError(f"fake_partner {fake_partner!r}: expected 'any' or 'same_kind'")
        self.bank, self.maker = bank, maker
        self.fakes, self.fake_share, self.fake_maker = fakes, fake_share, fake_maker
        self.partners: dict[str, np.ndarray] = {}
        if fake_share > 0 and (fake_partner == "same_kind" or partner_min_interocular > 0):
            kinds = np.array(bank.kinds)[bank.file_index]
            large = np.ones(len(bank), bool)
            if partner_min_interocular > 0:
                if bank.interocular is None:
                    raise ValueError("partner_min_interocular needs the faces' eye distances")
                large = bank.interocular >= partner_min_interocular
            for kind in sorted(set(fakes.kinds)):
                of_kind = (kinds == kind) if fake_partner == "same_kind" else True
                idx = np.flatnonzero(large & of_kind)
                if not len(idx):
                    raise ValueError(f"fake_partner {fake_partner} (eye distance >= "
                                     f"{partner_min_interocular:g} px): no real faces to pair a "
                                     f"{kind} fake with")
                self.partners[kind] = idx

    def __len__(self) -> int:
        return len(self.bank)

    def __getitem__(self, item):
        """((2, H, W, 3) uint8 real/fake pair, (H, W) float16 blend mask, boundary known)."""
        import torch

        face, seed = int(item[0]), int(item[1])
        rng = np.random.default_rng(seed)
        if self.fake_share > 0 and rng.random() < self.fake_share:
            fake_face = int(rng.integers(len(self.fakes)))
            if self.partners:
                pool = self.partners[self.fakes.kinds[self.fakes.file_index[fake_face]]]
                face = int(pool[rng.integers(len(pool))])
            real, fake = self.fake_maker(self.bank.crops[face], self.fakes.crops[fake_face], rng)
            mask = np.zeros(real.shape[:2], np.float16)
            # A generated face has no blend mask: its boundary map is not supervised.
            return torch.from_numpy(np.stack([real, fake])), torch.from_numpy(mask), False
        real, fake, mask = self.maker(self.bank.crops[face], self.bank.mesh[face], rng)
        return (torch.from_numpy(np.stack([real, fake])),
                torch.from_numpy(mask.astype(np.float16)), True)


def collate_pairs(items):
    """List of (pair, mask, boundary known) -> crops (2B, H, W, 3) uint8, labels (2B,)
    [0, 1, 0, 1, ...], masks (2B, 1, H, W) float32 (zeros for the reals), map_weight (2B,)
    (0 for trained fakes, whose boundary map is unknown)."""
    import torch

    crops = torch.cat([pair for pair, _, _ in items], 0)
    labels = torch.tensor([0.0, 1.0] * len(items))
    size = crops.shape[1:3]
    masks = torch.zeros(len(crops), 1, *size)
    map_weight = torch.ones(len(crops))
    for k, (_, mask, known) in enumerate(items):
        masks[2 * k + 1, 0] = mask.float()
        if not known:
            map_weight[2 * k + 1] = 0.0
    return crops, labels, masks, map_weight
