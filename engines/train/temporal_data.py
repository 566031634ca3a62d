"""Training windows: each real face window with its own self-blended window (SBI over time).

`WindowBank` holds the cached loose crops of many videos (memory-mapped from one .npy, so
spawned data-loader workers share it) with their face mesh and the start rows of every
window of T consecutive analysed frames.

`WindowMaker` turns a real window into (real, fake, masks), drawing one of these fakes:

- clip:        one `SBIParams` for the window, small per-frame mask jitter (`ClipBlender`):
               boundary flicker and unstable blending, like a face swap;
- lower:       the same on the lower-face hull only (mouth and jaw: lip-sync fakes);
- drift:       the blend strength drifts across the window (ratio r0 -> r1);
- partial:     only a contiguous span of the frames is blended (a fake that comes and goes);
- independent: fresh parameters every frame (strong flicker);
- reenact:     no blend of colours: one frame of the window warped onto every frame's
               landmarks (engines.synthesis.reenact): texture that sticks while the geometry
               moves, as talking-head generators animate a source image.

The pair is then jittered and augmented identically (one crop jitter per window plus a small
per-frame tracking jitter; colour, downscale, blur, noise, JPEG drawn once per window, noise
drawn per frame but shared by the real and fake frame), so the only difference inside a pair
is the blend itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from engines.data.clips import load_clip, window_starts
from engines.faces.align import AlignSpec, similarity_from_points
from engines.synthesis.reenact import ReenactParams, reenact_window, resample
from engines.synthesis.sbi import SBIConfig, SBIParams, self_blend
from engines.train.augment import AugmentConfig, jitter_matrix, shared_colour, shared_compression
from engines.train.overlays import composite, random_overlay

VARIANTS = ("clip", "lower", "drift", "partial", "independent", "reenact")


@dataclass(frozen=True)
class WindowFakeConfig:
    """The `fakes` section of a temporal config: which window fakes, and how they move."""

    variants: dict = field(default_factory=lambda: {
        "clip": 0.45, "lower": 0.2, "drift": 0.15, "partial": 0.1, "independent": 0.1})
    jitter: tuple[float, float] = (0.0, 3.0)  # ClipBlender jitter amount, drawn per window
    mesh_smooth: float = 1.0  # Gaussian sigma (frames) of the mesh over time; 0: raw mesh
    partial_min: int = 2  # shortest blended span (frames)
    track_jitter: float = 0.01  # per-frame crop jitter (face units, s.d. at most)
    reenact_full_p: float = 0.5  # reenact: share of whole-head re-renders (else face pastes)
    reenact_keep_detail: tuple[float, float] | None = None  # reenact: each frame keeps its own
    # detail finer than a Gaussian sigma drawn from this range (px of the loose crop)

    @classmethod
    def from_dict(cls, d: dict | None) -> WindowFakeConfig:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        unknown_variants = sorted(set(d.get("variants", {})) - set(VARIANTS))
        if unknown_variants:
            raise ValueError(f"fakes.variants: unknown {unknown_variants} (known: {VARIANTS})")
        detail = d.get("reenact_keep_detail")
        if detail is not None and not (
            isinstance(detail, (list, tuple)) and len(detail) == 2
            and all(isinstance(x, (int, float)) for x in detail) and 0 < detail[0] <= detail[1]
        ):
            raise ValueError("fakes.reenact_keep_detail: a [low, high] range of Gaussian sigmas "
                             f"in px with 0 < low <= high, or null; got {detail!r}")
        full_p = d.get("reenact_full_p", 0.5)
        if not isinstance(full_p, (int, float)) or not 0.0 <= full_p <= 1.0:
            raise ValueError(f"fakes.reenact_full_p: a share between 0 and 1; got {full_p!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# --------------------------------------------------------------------------------- bank
@dataclass
class WindowBank:
    """Loose crops of many videos, concatenated, and the windows over them."""

    crops: np.ndarray  # (F, S, S, 3) uint8, usually a read-only memmap
    mesh: np.ndarray  # (F, 468, 2) float32 (smoothed over time; NaN where missing)
    file_index: np.ndarray  # (F,) int32
    analysed: np.ndarray  # (F,) int32
    starts: np.ndarray  # (W,) int64 rows where a T-frame window starts
    frames: int
    files: list[str]
    labels: list[str]
    methods: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.starts)

    def window(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(crops (T, S, S, 3), mesh (T, 468, 2)) of window w."""
        s = int(self.starts[w])
        return np.asarray(self.crops[s : s + self.frames]), self.mesh[s : s + self.frames]

    def window_file(self, w: int) -> int:
        return int(self.file_index[self.starts[w]])

    @classmethod
    def load(
        cls,
        paths: list[Path],
        frames: int,
        *,
        store: Path | None = None,
        require_mesh: bool = False,
        per_file: int = 0,
        mesh_smooth: float = 0.0,
    ) -> WindowBank:
        """Windows of `frames` consecutive analysed frames from clip-cache files.

        require_mesh: only windows whose frames all have a face mesh. per_file > 0: at most
        that many windows per file, spread evenly and non-overlapping where possible (the
        evaluation protocol); 0: every window (training). store: a folder where the crops
        are written once as .npy and memory-mapped (shared by data-loader workers).
        """
        from engines.data.clips import spread_windows

        crops, mesh, file_index, analysed, starts = [], [], [], [], []
        files, labels, methods, groups = [], [], [], []
        offset = 0
        for path in paths:
            d = load_clip(path)
            if not len(d["crops"]):
                continue
            m = smooth_mesh(d["mesh"], d["analysed"], d["segment"], mesh_smooth)
            s = window_starts(d["analysed"], d["segment"], frames)
            if require_mesh and len(s):
                ok = np.isfinite(m).all(axis=(1, 2))
                bad = np.concatenate([[0], np.cumsum(~ok)])
                s = s[(bad[s + frames] - bad[s]) == 0]
            if per_file > 0:
                s = spread_windows(s, frames, per_file)
            if not len(s):
                continue
            fi = len(files)
            files.append(str(d["rel"]))
            labels.append(str(d["label"]))
            methods.append(str(d["method"]))
            groups.append(str(d["group"]))
            # Keep only the rows some window uses.
            used = np.zeros(len(d["crops"]), bool)
            for st in s:
                used[st : st + frames] = True
            remap = np.cumsum(used) - 1
            crops.append(d["crops"][used])
            mesh.append(m[used])
            analysed.append(d["analysed"][used])
            file_index.append(np.full(int(used.sum()), fi, np.int32))
            starts.append(remap[s] + offset)
            offset += int(used.sum())
        if not files:
            raise ValueError("no windows in the given clip-cache files")
        all_crops = np.concatenate(crops)
        del crops
        if store is not None:
            store = Path(store)
            store.mkdir(parents=True, exist_ok=True)
            np.save(store / "crops.npy", all_crops)
            del all_crops
            all_crops = np.load(store / "crops.npy", mmap_mode="r")
        return cls(all_crops, np.concatenate(mesh), np.concatenate(file_index),
                   np.concatenate(analysed), np.concatenate(starts).astype(np.int64), frames,
                   files, labels, methods, groups)

    def summary(self) -> dict:
        return {"windows": len(self), "files": len(self.files), "frames": int(len(self.crops))}

    def sample_weights(self, power: float = 0.5) -> np.ndarray:
        """Per-window sampling weights: each file's windows share n_file ** (1 - power)."""
        fi = self.file_index[self.starts]
        counts = np.bincount(fi)
        w = 1.0 / counts[fi].astype(np.float64) ** power
        return w / w.sum()

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.crops, np.memmap):
            state["crops"] = ("memmap", self.crops.filename)
        return state

    def __setstate__(self, state):
        crops = state["crops"]
        if isinstance(crops, tuple) and crops[0] == "memmap":
            state["crops"] = np.load(crops[1], mmap_mode="r")
        self.__dict__.update(state)


def smooth_mesh(mesh: np.ndarray, analysed: np.ndarray, segment: np.ndarray,
                sigma: float) -> np.ndarray:
    """Gaussian smoothing of the mesh over consecutive frames of each run (NaN frames are
    skipped and stay NaN). sigma in frames; 0 returns the mesh unchanged."""
    mesh = np.asarray(mesh, np.float32)
    if sigma <= 0 or len(mesh) < 2:
        return mesh.copy()
    ok = np.isfinite(mesh).all(axis=(1, 2))
    out = mesh.copy()
    radius = max(1, int(round(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    breaks = np.flatnonzero((np.diff(analysed) != 1) | (np.diff(segment) != 0)) + 1
    for run in np.split(np.arange(len(mesh)), breaks):
        for i in run:
            if not ok[i]:
                continue
            acc, wsum = np.zeros((468, 2), np.float64), 0.0
            for k, wk in zip(range(i - radius, i + radius + 1), taps):
                if run[0] <= k <= run[-1] and ok[k]:
                    acc += wk * mesh[k]
                    wsum += wk
            out[i] = (acc / wsum).astype(np.float32)
    return out


# --------------------------------------------------------------------------------- fakes
def blend_window(
    crops: np.ndarray, mesh: np.ndarray, rng: np.random.Generator, sbi: SBIConfig,
    fakes: WindowFakeConfig, variant: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Self-blend a window of loose crops. Returns (fake (T, S, S, 3) uint8, masks (T, S, S)
    float32, info {variant, ...})."""
    t = len(crops)
    if variant is None:
        names = [v for v in VARIANTS if fakes.variants.get(v, 0) > 0]
        p = np.array([fakes.variants[v] for v in names], np.float64)
        variant = names[int(rng.choice(len(names), p=p / p.sum()))]
    if variant == "reenact":
        re_params = ReenactParams.sample(rng, fakes.reenact_full_p, fakes.reenact_keep_detail)
        fake, masks, ref = reenact_window(np.asarray(crops), mesh, re_params, rng)
        return fake, masks, {"variant": variant, "mode": re_params.mode, "reference": ref,
                             "blended": t - 1}
    params = SBIParams.sample(rng, sbi)
    if variant == "lower":
        params = replace(params, hull="lower")
    amount = float(rng.uniform(*fakes.jitter))
    ratios = np.full(t, params.ratio)
    active = np.ones(t, bool)
    if variant == "drift":
        r0, r1 = rng.uniform(0.2, 1.0, 2)
        ratios = np.linspace(r0, r1, t)
    elif variant == "partial":
        length = int(rng.integers(min(fakes.partial_min, t), t))  # never the whole window
        first = int(rng.integers(0, t - length + 1))
        active[:] = False
        active[first : first + length] = True
    out = np.array(crops, copy=True)
    masks = np.zeros(crops.shape[:3], np.float32)
    for i in range(t):
        if not active[i]:
            continue
        if variant == "independent":
            p_i = replace(SBIParams.sample(rng, sbi), hull=params.hull)
        else:
            p_i = params.jittered(rng, amount) if amount > 0 else params
            p_i = replace(p_i, ratio=float(ratios[i]))
        out[i], masks[i] = self_blend(crops[i], mesh[i], p_i)
    info = {"variant": variant, "hull": params.hull, "jitter": round(amount, 3),
            "blended": int(active.sum())}
    return out, masks, info


# ---------------------------------------------------------------------- shared augmentation
def window_matrices(loose: AlignSpec, target: AlignSpec, rng: np.random.Generator,
                    aug: AugmentConfig, t: int, track_jitter: float) -> list[np.ndarray]:
    """One crop jitter for the window plus a small per-frame jitter (tracking noise)."""
    base = jitter_matrix(loose, target, rng, aug)
    if track_jitter <= 0:
        return [base] * t
    unit = target.size / target.scale  # pixels per face unit in the target crop
    sd = float(rng.uniform(0, track_jitter)) * unit
    out = []
    for _ in range(t):
        dx, dy = rng.normal(0, sd, 2)
        ds = 1 + rng.normal(0, track_jitter * 0.5 * float(rng.uniform(0, 1)))
        c = target.size / 2
        extra = np.array([[ds, 0, (1 - ds) * c + dx], [0, ds, (1 - ds) * c + dy]], np.float64)
        out.append((np.vstack([extra, [0, 0, 1]]) @ np.vstack([base, [0, 0, 1]]))[:2]
                   .astype(np.float32))
    return out


def augment_window(real: list[np.ndarray], fake: list[np.ndarray], rng: np.random.Generator,
                   cfg: AugmentConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Colour, overlay, downscale-and-up, blur, noise, JPEG or H.264, cutout: drawn once per
    window and applied to every frame of the real and the fake window (noise: one draw per
    frame, shared; H.264: each window encoded as one clip at the same CRF). The overlay comes
    before the degradations: a burned-in mark is encoded with the video."""
    t = len(real)
    frames = [im.astype(np.float32) for im in real + fake]
    size = real[0].shape[0]
    frames = shared_colour(frames, rng, cfg)
    if rng.random() < cfg.overlay_p:
        overlay = random_overlay(rng, size, t, cfg.overlay_drift)
        layers = [overlay.at(i) for i in range(t)]  # the real and the fake frame share them
        frames = [composite(im, *layers[i % t]) for i, im in enumerate(frames)]
    if rng.random() < cfg.resize_p:
        small = max(8, round(size * rng.uniform(*cfg.resize_factor)))
        down = [cv2.INTER_AREA, cv2.INTER_LINEAR][int(rng.integers(2))]
        up = [cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(2))]
        frames = [cv2.resize(cv2.resize(im, (small, small), interpolation=down), (size, size),
                             interpolation=up) for im in frames]
    if rng.random() < cfg.blur_p:
        sigma = rng.uniform(0.4, 1.5)
        frames = [cv2.GaussianBlur(im, (0, 0), sigma) for im in frames]
    if rng.random() < cfg.noise_p:
        level = rng.uniform(*cfg.noise_sigma)
        noise = [rng.normal(0, level, frames[0].shape).astype(np.float32) for _ in range(t)]
        frames = [im + noise[i % t] for i, im in enumerate(frames)]
    frames = [np.clip(im + 0.5, 0, 255).astype(np.uint8) for im in frames]
    real_c, fake_c = shared_compression([frames[:t], frames[t:]], rng, cfg)
    frames = real_c + fake_c
    if rng.random() < cfg.cutout_p:
        h = int(rng.integers(size // 8, size // 3))
        w = int(rng.integers(size // 8, size // 3))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        value = rng.integers(0, 256, 3).astype(np.uint8)
        frames = [im.copy() for im in frames]
        for im in frames:
            im[y : y + h, x : x + w] = value
    return frames[:t], frames[t:]


def centre_matrix(loose: AlignSpec, target: AlignSpec) -> np.ndarray:
    """2x3 matrix from a loose crop to the target crop (same face frame), no jitter."""
    return similarity_from_points(loose.destination_points(), target.destination_points())


def centre_window(crops: np.ndarray, loose: AlignSpec, target: AlignSpec) -> np.ndarray:
    """(..., S, S, 3) loose crops -> (..., size, size, 3) target crops (bilinear, as at run time)."""
    m = centre_matrix(loose, target)
    flat = np.asarray(crops).reshape(-1, *crops.shape[-3:])
    out = np.empty((len(flat), target.size, target.size, 3), np.uint8)
    for i, im in enumerate(flat):
        out[i] = cv2.warpAffine(im, m, (target.size, target.size), flags=cv2.INTER_LINEAR)
    return out.reshape(*crops.shape[:-3], target.size, target.size, 3)


class WindowMaker:
    """One training pair (real window, fake window, masks) from a loose-crop window."""

    def __init__(self, loose: AlignSpec, target: AlignSpec, sbi: SBIConfig, aug: AugmentConfig,
                 fakes: WindowFakeConfig) -> None:
        self.loose, self.target, self.sbi, self.aug, self.fakes = loose, target, sbi, aug, fakes

    def __call__(self, crops: np.ndarray, mesh: np.ndarray, rng: np.random.Generator):
        fake, masks, info = blend_window(crops, mesh, rng, self.sbi, self.fakes)
        if info["variant"] == "reenact" and rng.random() < 0.5:
            crops = resample(np.asarray(crops), rng)  # the warp's resampling is no label
        t, size = len(crops), self.target.size
        mats = window_matrices(self.loose, self.target, rng, self.aug, t, self.fakes.track_jitter)
        real_c, fake_c, mask_c = [], [], []
        for i, m in enumerate(mats):
            real_c.append(cv2.warpAffine(crops[i], m, (size, size), flags=cv2.INTER_LINEAR))
            fake_c.append(cv2.warpAffine(fake[i], m, (size, size), flags=cv2.INTER_LINEAR))
            mask_c.append(cv2.warpAffine(masks[i], m, (size, size), flags=cv2.INTER_LINEAR))
        real_c, fake_c = augment_window(real_c, fake_c, rng, self.aug)
        return np.stack(real_c), np.stack(fake_c), np.stack(mask_c), info


# ---------------------------------------------------------------------- torch dataset
class WindowPairDataset:
    """Map-style dataset (torch protocol) indexed by (window, seed) rows of an epoch plan."""

    def __init__(self, bank: WindowBank, maker: WindowMaker) -> None:
        self.bank, self.maker = bank, maker

    def __len__(self) -> int:
        return len(self.bank)

    def __getitem__(self, item):
        import torch

        w, seed = int(item[0]), int(item[1])
        rng = np.random.default_rng(seed)
        crops, mesh = self.bank.window(w)
        if rng.random() < 0.5:  # time reversal: a real window played backwards is still real
            crops, mesh = crops[::-1].copy(), mesh[::-1].copy()
        real, fake, masks, _ = self.maker(crops, mesh, rng)
        return (torch.from_numpy(np.stack([real, fake])),
                torch.from_numpy(masks.astype(np.float16)))


def collate_windows(items):
    """List of ((2, T, H, W, 3) pair, (T, H, W) masks) -> windows (2B, T, H, W, 3) uint8,
    labels (2B,) [0, 1, 0, 1, ...], masks (2B*T, 1, H, W) float32 (zeros for the reals)."""
    import torch

    windows = torch.cat([pair for pair, _ in items], 0)
    labels = torch.tensor([0.0, 1.0] * len(items))
    t, h, w = windows.shape[1:4]
    masks = torch.zeros(len(windows), t, 1, h, w)
    for k, (_, m) in enumerate(items):
        masks[2 * k + 1, :, 0] = m.float()
    return windows, labels, masks.reshape(-1, 1, h, w)


def describe_bank(bank: WindowBank) -> str:
    return json.dumps(bank.summary())
