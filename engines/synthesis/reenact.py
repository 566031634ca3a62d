"""Self-reenacted windows: a real face window re-made by warping one of its own frames.

Talking-head generators (FOMM, TPSMM, LivePortrait, SadTalker's renderer, StyleTalk,
DreamTalk's PIRenderer, and in part the reference-conditioned diffusion models) animate a
source image: every output frame is the source's texture moved by a motion field that follows
the driving landmarks. No blending boundary need exist, so self-blends do not teach it. What
such a video shows instead is texture that sticks to the source while the geometry moves:
skin, hair and lighting frozen, eyelids and lips stretched rather than opened, teeth that
smear. This module makes that from real footage alone (a pseudo-fake, as SBI is for swaps):

1. a reference frame r of the window (random, or the one farthest from the others);
2. for every frame t, a thin-plate spline through a subset of the face mesh maps frame t's
   landmarks to frame r's (plus anchors on the crop border, fixed, so a full-frame warp keeps
   the background still, as a warping generator does): the reference is warped onto frame t's
   geometry (backward mapping, evaluated on a coarse grid and upsampled: the field is smooth);
3. the warped reference replaces frame t inside a soft mask: the whole head with a wide, very
   soft edge (`mode: full`: a generated frame, whose background the tracker's crop still sees
   move as in the real video) or the face hull with a tighter edge (`mode: paste`: a renderer
   pasted back into the video). The mask is the blend the auxiliary boundary target marks;
4. optionally (`keep_detail`), frame t keeps its own detail finer than a small Gaussian: the
   warp then moves the face, not the reference's camera noise, which a re-encoded fake has
   fresh in every frame.

All randomness is in `ReenactParams` (drawn with `ReenactParams.sample(rng)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from engines.synthesis.sbi import hull_mask

# Every 3rd point of MediaPipe's 468-point mesh: 156 control points spread over the face,
# eyelids and lips included (a subset keeps the spline smooth and its solve small).
MESH_SUBSET = np.arange(0, 468, 3)


@dataclass(frozen=True)
class ReenactParams:
    """One self-reenactment of a window."""

    reference: Literal["random", "farthest"] = "random"  # which frame is the source
    mode: Literal["full", "paste"] = "paste"  # whole head re-rendered, or the face pasted
    mask_blur: float = 0.06  # Gaussian sigma of the mask edge, in face widths
    mask_grow: float = 0.0  # outward (> 0) or inward (< 0) shift of the mask edge, face widths
    smooth: float = 0.0  # TPS regularisation (0: exact at the control points)
    keep_detail: float = 0.0  # > 0: frame t keeps its own detail finer than this Gaussian
    # sigma (px): camera noise and compression change every frame, as in a re-encoded fake

    @classmethod
    def sample(cls, rng: np.random.Generator, full_p: float = 0.5,
               keep_detail: tuple[float, float] | None = None) -> ReenactParams:
        detail = float(rng.uniform(*keep_detail)) if keep_detail else 0.0
        return cls(
            keep_detail=detail,
            reference="farthest" if rng.random() < 0.5 else "random",
            mode="full" if rng.random() < full_p else "paste",
            mask_blur=float(rng.uniform(0.02, 0.1)),
            mask_grow=float(rng.uniform(-0.08, 0.0)),
            smooth=float(rng.choice([0.0, 1.0, 10.0])),
        )


# ------------------------------------------------------------------------ thin-plate spline
def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = r2 * np.log(r2)
    return np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)


def tps_map(dst: np.ndarray, src: np.ndarray, shape: tuple[int, int], grid_step: int = 8,
            smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Backward map (map_x, map_y) of `shape` (H, W) for cv2.remap: the thin-plate spline that
    sends each dst control point to its src point, evaluated every `grid_step` pixels and
    upsampled (the field is smooth). dst, src: (K, 2) in pixels."""
    dst = np.asarray(dst, np.float64)
    src = np.asarray(src, np.float64)
    k = len(dst)
    scale = float(max(shape))  # solve in units of the image size: a well-conditioned system
    d = dst / scale
    a = np.zeros((k + 3, k + 3))
    a[:k, :k] = _tps_kernel(((d[:, None] - d[None]) ** 2).sum(-1)) + smooth * 1e-3 * np.eye(k)
    a[:k, k] = 1.0
    a[:k, k + 1 :] = d
    a[k, :k] = 1.0
    a[k + 1 :, :k] = d.T
    rhs = np.zeros((k + 3, 2))
    rhs[:k] = src / scale
    coef = np.linalg.lstsq(a, rhs, rcond=None)[0]
    height, width = shape
    gy = np.arange(0, height + grid_step, grid_step, dtype=np.float64)
    gx = np.arange(0, width + grid_step, grid_step, dtype=np.float64)
    px, py = np.meshgrid(gx, gy)
    p = np.stack([px.ravel(), py.ravel()], 1) / scale
    u = _tps_kernel(((p[:, None] - d[None]) ** 2).sum(-1))
    out = (u @ coef[:k] + coef[k] + p @ coef[k + 1 :]) * scale
    # Coarse grid -> full size, node k at pixel k * grid_step (corner-aligned: cv2.resize
    # aligns pixel centres, which would shift the field).
    to_grid = np.float32([[1 / grid_step, 0, 0], [0, 1 / grid_step, 0]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    map_x, map_y = (
        cv2.warpAffine(c.reshape(len(gy), len(gx)).astype(np.float32), to_grid, (width, height),
                       flags=flags, borderMode=cv2.BORDER_REPLICATE)
        for c in (out[:, 0], out[:, 1])
    )
    return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)


def border_anchors(shape: tuple[int, int], per_side: int = 4) -> np.ndarray:
    """Points along the image border (corners included): fixed, so the background stays."""
    height, width = shape
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right]).astype(np.float32)


def warp_to(image: np.ndarray, image_mesh: np.ndarray, target_mesh: np.ndarray,
            smooth: float = 0.0) -> np.ndarray:
    """`image`, whose face has the landmarks `image_mesh`, warped so that its face takes the
    geometry of `target_mesh` (both (468, 2) in the image's pixels); the border stays."""
    shape = image.shape[:2]
    anchors = border_anchors(shape)
    dst = np.concatenate([np.asarray(target_mesh)[MESH_SUBSET], anchors])
    src = np.concatenate([np.asarray(image_mesh)[MESH_SUBSET], anchors])
    map_x, map_y = tps_map(dst, src, shape, smooth=smooth)
    return cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def resample(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frames shifted by a random sub-pixel offset with the warp's interpolation: given to the
    real side of some pairs, so one more resampling is not what tells a reenactment apart."""
    height, width = frames.shape[1:3]
    dx, dy = rng.uniform(-0.5, 0.5, 2)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return np.stack([cv2.warpAffine(f, shift, (width, height), flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REFLECT) for f in frames])


# ---------------------------------------------------------------------------------- windows
def with_detail_of(base: np.ndarray, detail: np.ndarray, sigma: float) -> np.ndarray:
    """`base`'s content coarser than a Gaussian of `sigma` px plus `detail`'s finer part."""
    b = base.astype(np.float32)
    d = detail.astype(np.float32)
    out = cv2.GaussianBlur(b, (0, 0), sigma) + d - cv2.GaussianBlur(d, (0, 0), sigma)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def reference_index(mesh: np.ndarray, params: ReenactParams, rng: np.random.Generator) -> int:
    """The source frame: random, or the frame whose landmarks differ most from the others'
    (the largest motion to fake, so the window cannot stay close to the real one)."""
    if params.reference == "farthest":
        centred = mesh - mesh.mean(axis=1, keepdims=True)
        spread = np.abs(centred[:, None] - centred[None]).mean(axis=(2, 3)).sum(1)
        return int(np.argmax(spread))
    return int(rng.integers(len(mesh)))


def paste_mask(shape: tuple[int, int], mesh: np.ndarray, params: ReenactParams) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1]: the mesh hull, grown or shrunk, edge blurred; for
    `full`, the hull grown by half a face width (hair, ears, neck) with a wide edge. Drawn at
    a quarter of the size (the edge is soft) and upsampled."""
    height, width = shape
    small = (max(8, height // 4), max(8, width // 4))
    mesh_small = np.asarray(mesh) * np.float32(small[0] / height)
    mask = hull_mask(small, mesh_small, "full")
    span = float(np.ptp(mesh_small[:, 0]))
    grow, blur = params.mask_grow, params.mask_blur
    if params.mode == "full":
        grow, blur = 0.5 + grow, 0.15 + blur
    k = int(abs(grow) * span) | 1
    if k >= 3:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        mask = cv2.dilate(mask, kernel) if grow > 0 else cv2.erode(mask, kernel)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, blur * span))
    return np.clip(cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def reenact_window(crops: np.ndarray, mesh: np.ndarray, params: ReenactParams,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Re-make a window (T, S, S, 3) uint8 from one of its frames warped to every frame's
    landmarks (T, 468, 2). Returns (fake (T, S, S, 3) uint8, masks (T, S, S) float32: the
    blend masks, zeros on the reference frame, which is unchanged; reference index)."""
    ref = reference_index(mesh, params, rng)
    shape = crops.shape[1:3]
    fake = np.array(crops, copy=True)
    masks = np.zeros(crops.shape[:3], np.float32)
    for t in range(len(crops)):
        if t == ref:  # the source frame itself: nothing changed, no boundary
            continue
        warped = warp_to(crops[ref], mesh[ref], mesh[t], params.smooth)
        if params.keep_detail > 0:
            warped = with_detail_of(warped, crops[t], params.keep_detail)
        m = paste_mask(shape, mesh[t], params)
        fake[t] = cv2.blendLinear(warped, crops[t], m, 1.0 - m)
        masks[t] = m
    return fake, masks, ref
