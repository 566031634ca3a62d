"""Self-blended images (SBI): a face blended with a slightly altered copy of itself.

Clean-room implementation of the published recipe (Shiohara & Yamasaki, CVPR 2022), as
described in the project's reference notes:

1. mask: the filled convex hull of the face landmarks (variants: all points, the inner face
   without the forehead, the lower face, a dilated hull), moved by a small random affine
   (translate x +-3 %, y +-1.5 %, scale 0.95..1.05) and elastically deformed;
2. source and target are the same image; one of them gets a colour shift (RGB, HSV,
   brightness/contrast) and then either a downscale-and-up (x2 / x4) or a sharpening;
3. the mask is resized to a random 192-256 px (relative to the face), blurred, cut to its core
   (values < 1 -> 0), blurred again and scaled by a blend ratio;
4. fake = m * source + (1 - m) * target.

The pair's shared post-augmentation (JPEG, colour jitter, crop) is the caller's business
(engines.train.augment does it for training).

All randomness comes from the `SBIParams` (drawn with `SBIParams.sample(rng)`), so one set of
parameters reproduces the same blend, and `self_blend_clip` / `ClipBlender` reuse one set over a
clip with small per-frame jitter (flicker at the boundary, like real face-swap videos).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

HULLS = ("full", "inner", "lower", "dilated")


@dataclass(frozen=True)
class SBIConfig:
    """Ranges the parameters are drawn from (the `sbi` section of a training config)."""

    hull_weights: dict = field(
        default_factory=lambda: {"full": 0.5, "inner": 0.2, "lower": 0.15, "dilated": 0.15}
    )
    affine_translate: tuple[float, float] = (0.03, 0.015)
    affine_scale: tuple[float, float] = (0.95, 1.05)
    elastic_p: float = 0.5
    elastic_alpha: float = 50.0
    elastic_sigma: float = 7.0
    rgb_shift: float = 20.0
    hsv_shift: float = 0.3
    brightness: float = 0.1
    contrast: float = 0.1
    degrade_p: tuple[float, float] = (0.5, 0.5)  # downscale-and-up, sharpen (else neither)
    mask_resize: tuple[int, int] = (192, 256)
    blur_kernel: tuple[int, int] = (5, 25)
    blur_sigma: tuple[float, float] = (5.0, 46.0)
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

    @classmethod
    def from_dict(cls, d: dict | None) -> SBIConfig:
        d = dict(d or {})
        out = {}
        unknown = sorted(set(d or {}) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        for key, value in (d or {}).items():
            out[key] = tuple(value) if isinstance(value, list) else value
        return cls(**out)

    def strong(self) -> SBIConfig:
        """Moderate-to-strong blends (full mask ratio, clear colour shift): for demos."""
        return replace(self, blend_ratios=(0.75, 1.0), rgb_shift=max(self.rgb_shift, 20.0))


@dataclass(frozen=True)
class SBIParams:
    """One self-blend, fully determined (sample with `SBIParams.sample(rng)`)."""

    hull: str = "full"
    translate: tuple[float, float] = (0.0, 0.0)  # fraction of the image size
    scale: float = 1.0
    elastic_seed: int | None = None  # None: no elastic deformation
    elastic_alpha: float = 50.0
    elastic_sigma: float = 7.0
    altered: str = "source"  # which side gets the colour shift + degradation
    rgb_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # added to B, G, R
    hsv_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # hue (x10 cv units), sat, val
    brightness: float = 0.0
    contrast: float = 0.0
    degrade: str = "none"  # "down" | "sharpen" | "none"
    down_factor: float = 2.0
    sharpen_amount: float = 0.3
    mask_size: int = 224  # mask working size for a face spanning 80 % of it
    blur1: int = 15
    blur2: int = 15
    blur2_sigma: float = 10.0
    ratio: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator, config: SBIConfig | None = None) -> SBIParams:
        c = config or SBIConfig()
        hulls = [h for h in HULLS if c.hull_weights.get(h, 0) > 0]
        weights = np.array([c.hull_weights[h] for h in hulls], np.float64)
        hull = hulls[int(rng.choice(len(hulls), p=weights / weights.sum()))]
        tx = float(rng.uniform(-c.affine_translate[0], c.affine_translate[0]))
        ty = float(rng.uniform(-c.affine_translate[1], c.affine_translate[1]))
        scale = float(rng.uniform(*c.affine_scale))
        elastic_seed = int(rng.integers(2**31)) if rng.random() < c.elastic_p else None
        altered = "source" if rng.random() < 0.5 else "target"
        rgb = tuple(float(v) for v in rng.uniform(-c.rgb_shift, c.rgb_shift, 3))
        hsv = tuple(float(v) for v in rng.uniform(-c.hsv_shift, c.hsv_shift, 3))
        brightness = float(rng.uniform(-c.brightness, c.brightness))
        contrast = float(rng.uniform(-c.contrast, c.contrast))
        u = rng.random()
        degrade = "down" if u < c.degrade_p[0] else (
            "sharpen" if u < c.degrade_p[0] + c.degrade_p[1] else "none"
        )
        down_factor = float(rng.choice([2.0, 4.0]))
        sharpen_amount = float(rng.uniform(0.2, 0.5))
        mask_size = int(rng.integers(c.mask_resize[0], c.mask_resize[1] + 1))
        blur1 = _odd(int(rng.integers(c.blur_kernel[0], c.blur_kernel[1] + 1)))
        blur2 = _odd(int(rng.integers(c.blur_kernel[0], c.blur_kernel[1] + 1)))
        blur2_sigma = float(rng.uniform(*c.blur_sigma))
        ratio = float(rng.choice(np.asarray(c.blend_ratios, np.float64)))
        return cls(
            hull, (tx, ty), scale, elastic_seed, c.elastic_alpha, c.elastic_sigma, altered, rgb,
            hsv, brightness, contrast, degrade, down_factor, sharpen_amount, mask_size, blur1,
            blur2, blur2_sigma, ratio,
        )

    def jittered(self, rng: np.random.Generator, amount: float = 1.0) -> SBIParams:
        """The same blend with a small mask jitter (for the frames of one clip)."""
        return replace(
            self,
            translate=(
                self.translate[0] + float(rng.normal(0, 0.003 * amount)),
                self.translate[1] + float(rng.normal(0, 0.002 * amount)),
            ),
            scale=self.scale * float(1 + rng.normal(0, 0.004 * amount)),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _odd(k: int) -> int:
    return k if k % 2 else k + 1


# ---------------------------------------------------------------------------------- masks
def _hull_points(landmarks: np.ndarray, hull: str) -> np.ndarray:
    pts = np.asarray(landmarks, np.float32).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    if hull in ("inner", "lower"):
        top, bottom = pts[:, 1].min(), pts[:, 1].max()
        cut = top + (0.2 if hull == "inner" else 0.5) * (bottom - top)
        sub = pts[pts[:, 1] >= cut]
        if len(sub) >= 3:
            pts = sub
    return pts


def hull_mask(shape: tuple[int, int], landmarks: np.ndarray, hull: str = "full") -> np.ndarray:
    """Filled convex hull of the landmarks, float32 {0, 1} of `shape` (H, W)."""
    height, width = shape
    mask = np.zeros((height, width), np.uint8)
    pts = _hull_points(landmarks, hull)
    if len(pts) < 3:
        return mask.astype(np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    if hull == "dilated":
        span = float(np.ptp(pts, axis=0).max())
        k = _odd(max(3, int(0.08 * span)))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return mask.astype(np.float32)


def _elastic(mask: np.ndarray, seed: int, alpha: float, sigma: float) -> np.ndarray:
    height, width = mask.shape
    rng = np.random.default_rng(seed)
    # As in common elastic-transform implementations: a uniform field smoothed by a Gaussian of
    # `sigma`, times alpha. The field is smooth, so it is drawn at 1/4 of the size (sigma / 4)
    # and upsampled, x 1/4 to keep its amplitude (the same standard deviation, measured).
    r = 0.25 if sigma >= 4 else 1.0
    h, w = max(2, round(height * r)), max(2, round(width * r))
    s = sigma * r
    k = _odd(int(6 * s) + 1)
    fields = []
    for _ in range(2):
        f = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (k, k), s)
        if r != 1.0:
            f = cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) * np.float32(r)
        fields.append(f)
    dx, dy = fields
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        mask, gx + dx * alpha, gy + dy * alpha, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def blend_mask(
    shape: tuple[int, int], landmarks: np.ndarray, params: SBIParams
) -> np.ndarray:
    """The blend mask m (H, W) float32 in [0, params.ratio]."""
    height, width = shape
    pts = _hull_points(landmarks, "full")
    if len(pts) < 3:
        return np.zeros((height, width), np.float32)
    mask = hull_mask(shape, landmarks, params.hull)
    # Small affine about the face centre.
    centre = pts.mean(0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, params.scale)
    matrix[0, 2] += params.translate[0] * width
    matrix[1, 2] += params.translate[1] * height
    mask = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR)
    # Work at a size where the face spans ~80 % of `mask_size`, as in the published recipe
    # (whose crops are tight around the face), so blur sizes are relative to the face.
    face_span = float(max(np.ptp(pts, axis=0).max(), 8.0))
    work = int(np.clip(params.mask_size * 0.8 * max(height, width) / face_span, 64, 1024))
    wh = (max(8, round(work * width / max(height, width))), max(8, round(work * height / max(height, width))))
    small = cv2.resize(mask, wh, interpolation=cv2.INTER_LINEAR)
    if params.elastic_seed is not None:
        small = _elastic(small, params.elastic_seed, params.elastic_alpha, params.elastic_sigma)
    small = cv2.GaussianBlur(small, (params.blur1, params.blur1), 0)
    small[small < 1.0 - 1e-3] = 0.0  # keep the core only (tolerance: blur weights sum to ~1)
    small = cv2.GaussianBlur(small, (params.blur2, params.blur2), params.blur2_sigma)
    mask = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0) * np.float32(params.ratio)


# ------------------------------------------------------------------------- colour / quality
def _lut(values: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """A (1, 256, C) table for cv2.LUT from per-channel values (C, 256)."""
    return np.ascontiguousarray(np.asarray(values).T[None].astype(dtype))


def alter(image: np.ndarray, params: SBIParams) -> np.ndarray:
    """The colour shift then the degradation (downscale-and-up or sharpen), uint8 -> uint8.

    The colour steps are per-pixel maps of uint8 values, applied as look-up tables."""
    levels = np.arange(256, dtype=np.float32)
    shift = np.asarray(params.rgb_shift, np.float32)
    out = cv2.LUT(image, _lut(np.clip(levels[None] + shift[:, None], 0, 255)))
    if any(params.hsv_shift):
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        h = np.mod(levels + params.hsv_shift[0] * 10.0, 180.0)
        sat = levels * (1.0 + 0.5 * params.hsv_shift[1])
        val = levels * (1.0 + 0.3 * params.hsv_shift[2])
        hsv = cv2.LUT(hsv, _lut(np.clip(np.stack([h, sat, val]), 0, 255)))
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    gain = np.clip(levels * (1.0 + params.contrast) + params.brightness * 255.0, 0, 255)
    out = cv2.LUT(out, gain.astype(np.float32))
    height, width = out.shape[:2]
    if params.degrade == "down":
        small = cv2.resize(
            out,
            (max(1, round(width / params.down_factor)), max(1, round(height / params.down_factor))),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    elif params.degrade == "sharpen":
        blurred = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = cv2.addWeighted(out, 1.0 + params.sharpen_amount, blurred, -params.sharpen_amount, 0.0)
    return _to_uint8(out)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """float -> uint8, rounded to nearest and saturated (OpenCV's conversion)."""
    return cv2.convertScaleAbs(np.maximum(x, 0, out=x) if x.flags.writeable else np.maximum(x, 0))


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    params: SBIParams | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend a face with an altered copy of itself.

    image: (H, W, 3) uint8 (BGR or RGB: the recipe is colour-order agnostic).
    landmarks: (P, 2) face landmarks in image pixels (e.g. the 468 mesh points, or
    `face_ellipse_landmarks` from 4 detector keypoints). params: the blend; drawn from rng
    (default: a fresh generator) when None. Returns (fake uint8, mask float32 (H, W)).
    """
    if params is None:
        params = SBIParams.sample(rng if rng is not None else np.random.default_rng())
    mask = blend_mask(image.shape[:2], landmarks, params)
    if params.altered == "source":
        # Only the pixels under the mask change: alter a margin around them, not the frame
        # (the degradation's footprint is a few pixels; the margin covers it).
        ys, xs = np.nonzero(mask > 0)
        fake = image.copy()
        if len(ys):
            pad = 8 + int(params.down_factor)
            y0, y1 = max(0, ys.min() - pad), min(image.shape[0], ys.max() + 1 + pad)
            x0, x1 = max(0, xs.min() - pad), min(image.shape[1], xs.max() + 1 + pad)
            region = image[y0:y1, x0:x1]
            m = mask[y0:y1, x0:x1]
            fake[y0:y1, x0:x1] = cv2.blendLinear(alter(region, params), region, m, 1.0 - m)
        return fake, mask
    fake = cv2.blendLinear(image, alter(image, params), mask, 1.0 - mask)
    return fake, mask


def self_blend_clip(
    frames: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray],
    params: SBIParams,
    rng: np.random.Generator,
    jitter: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Self-blend every frame of a clip with one parameter set plus small per-frame jitter."""
    blender = ClipBlender(params, rng, jitter)
    out = [blender(f, lm) for f, lm in zip(frames, landmarks)]
    return [o[0] for o in out], [o[1] for o in out]


class ClipBlender:
    """Frame-by-frame self-blending with clip-consistent parameters (for streams and demos)."""

    def __init__(self, params: SBIParams, rng: np.random.Generator, jitter: float = 1.0) -> None:
        self.params = params
        self.rng = rng
        self.jitter = jitter

    def __call__(self, frame: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = self.params.jittered(self.rng, self.jitter) if self.jitter > 0 else self.params
        return self_blend(frame, landmarks, params)


def face_ellipse_landmarks(keypoints: np.ndarray, points: int = 64) -> np.ndarray:
    """Pseudo-landmarks on an ellipse around the face from 4 detector keypoints.

    keypoints: (4, 2) eye_left, eye_right, nose, mouth (engines.faces.types order). A fallback
    when no face mesh is available; the ellipse spans the face from brows to chin.
    """
    kp = np.asarray(keypoints, np.float32).reshape(4, 2)
    eyes = (kp[0] + kp[1]) / 2
    across = kp[1] - kp[0]
    unit = float(np.linalg.norm(across)) or 1.0
    ex = across / unit
    ey = np.array([-ex[1], ex[0]], np.float32)
    if np.dot(kp[3] - eyes, ey) < 0:
        ey = -ey
    centre = eyes + ey * 0.45 * unit
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    rx, ry = 0.95 * unit, 1.15 * unit
    return (centre + np.outer(np.cos(t) * rx, ex) + np.outer(np.sin(t) * ry, ey)).astype(
        np.float32
    )
