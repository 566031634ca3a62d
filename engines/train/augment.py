"""Training-time crops and the shared real/fake pair augmentation (numpy + OpenCV).

Every operation is drawn once and applied identically to the real crop and its self-blend, so
the only difference inside a pair is the blend itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.faces.align import AlignSpec, recrop_matrix, similarity_from_points


@dataclass(frozen=True)
class AugmentConfig:
    jitter_scale: tuple[float, float] = (0.92, 1.08)
    jitter_translate: float = 0.04  # face units
    jitter_rotate: float = 8.0  # degrees
    hflip_p: float = 0.5
    color_p: float = 0.5
    color_gain: float = 0.2  # contrast-like gain 1 +- this
    color_bias: float = 20.0  # brightness offset +- this (grey levels)
    color_sat: float = 0.3  # saturation 1 +- this
    color_tint: float = 8.0  # per-channel offset +- this (grey levels)
    hue_shift: float = 0.0  # hue rotation +- this (OpenCV units, 180 = full turn)
    gray_p: float = 0.0  # probability of a grey-scale pair
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 100)
    # H.264 instead of JPEG for this share of pairs (a window: one clip, intra then predicted
    # frames), at a CRF from video_crf, after resizing by a factor from video_scale and back
    # (a face covers more or fewer macroblocks as it is larger or smaller in the stream).
    # 0 draws nothing, so recipes without it keep their random sequence.
    video_p: float = 0.0
    video_crf: tuple[int, int] = (18, 40)
    video_scale: tuple[float, float] = (1.0, 2.0)
    resize_p: float = 0.3
    resize_factor: tuple[float, float] = (0.35, 0.9)
    blur_p: float = 0.2
    noise_p: float = 0.2
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    cutout_p: float = 0.3
    # Watermarks, logos and bars (engines.train.overlays), shared by the pair: temporal only.
    overlay_p: float = 0.0
    overlay_drift: float = 1.0  # s.d. bound of the overlay's per-frame drift in the crop (px)
    # The self-blend is made on the loose crop resized by a factor drawn from this range
    # (1: the cached resolution): blend artefacts (resampling, boundary blur) then reach the
    # model at several scales, as faces do at run time, and small blends are cheaper.
    blend_scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlay_p <= 1.0:
            raise ValueError(f"augment.overlay_p: {self.overlay_p!r} is not a probability")
        if self.overlay_drift < 0:
            raise ValueError(f"augment.overlay_drift: {self.overlay_drift!r} is negative")
        if not 0.0 <= self.video_p <= 1.0:
            raise ValueError(f"augment.video_p: {self.video_p!r} is not a probability")
        if not 0 <= self.video_crf[0] <= self.video_crf[1] <= 51:
            raise ValueError(f"augment.video_crf: {list(self.video_crf)!r} is not a range "
                             "within H.264's 0..51")
        if not 0 < self.video_scale[0] <= self.video_scale[1]:
            raise ValueError(f"augment.video_scale: {list(self.video_scale)!r} is not a range "
                             "of positive factors")

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        out = {}
        unknown = sorted(set(d or {}) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        for key, value in (d or {}).items():
            out[key] = tuple(value) if isinstance(value, list) else value
        return cls(**out)


def crop_matrix(loose: AlignSpec, target: AlignSpec) -> np.ndarray:
    """2x3 matrix from a loose crop's pixels to the target crop's pixels (same face frame)."""
    return recrop_matrix(loose, target)


def center_crop(images: np.ndarray, loose: AlignSpec, target: AlignSpec) -> np.ndarray:
    """The target crop of each loose crop (N, S, S, 3) -> (N, size, size, 3), no jitter.

    Bilinear, like the run-time crop (engines.faces.align.align_faces).
    """
    matrix = crop_matrix(loose, target)
    out = np.zeros((len(images), target.size, target.size, 3), np.uint8)
    for i, im in enumerate(images):
        out[i] = cv2.warpAffine(im, matrix, (target.size, target.size), flags=cv2.INTER_LINEAR)
    return out


def jitter_matrix(
    loose: AlignSpec, target: AlignSpec, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """Random scale / rotation / shift / flip of the target crop inside the loose crop."""
    dst = target.destination_points().astype(np.float64)
    centre = np.array([target.size / 2, target.size / 2])
    s = rng.uniform(*cfg.jitter_scale)
    angle = np.deg2rad(rng.uniform(-cfg.jitter_rotate, cfg.jitter_rotate))
    shift = rng.uniform(-cfg.jitter_translate, cfg.jitter_translate, 2) * target.size / target.scale
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (dst - centre) @ rot.T * s + centre + shift
    if rng.random() < cfg.hflip_p:
        dst[:, 0] = target.size - 1 - dst[:, 0]
        dst = dst[[1, 0, 2, 3]]  # the image-left eye stays first
    return similarity_from_points(loose.destination_points(), dst)


def warp_pair(images: list[np.ndarray], matrix: np.ndarray, size: int) -> list[np.ndarray]:
    return [
        cv2.warpAffine(im, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        for im in images
    ]


def shared_colour(images: list[np.ndarray], rng: np.random.Generator,
                  cfg: AugmentConfig) -> list[np.ndarray]:
    """One global colour change (gain, brightness, saturation, tint, hue; sometimes grey)
    drawn once and applied to every float32 image, clipped to 0..255.

    Shared by a real and its fake: absolute face colour must not predict the label (the
    self-blend's colour shift is only visible relative to the frame).
    """
    out = images
    if rng.random() < cfg.color_p:
        gain = 1.0 + rng.uniform(-cfg.color_gain, cfg.color_gain)
        bias = rng.uniform(-cfg.color_bias, cfg.color_bias)
        sat = 1.0 + rng.uniform(-cfg.color_sat, cfg.color_sat)
        tint = rng.uniform(-cfg.color_tint, cfg.color_tint, 3).astype(np.float32)
        hue = rng.uniform(-cfg.hue_shift, cfg.hue_shift) if cfg.hue_shift > 0 else 0.0
        res = []
        for im in out:
            if hue:
                hsv = cv2.cvtColor(np.clip(im, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV)
                hsv[..., 0] = np.mod(hsv[..., 0].astype(np.float32) + hue, 180).astype(np.uint8)
                im = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.float32)
            gray = im.mean(axis=2, keepdims=True)
            res.append((gray + (im - gray) * sat) * gain + bias + tint)
        out = res
    if cfg.gray_p > 0 and rng.random() < cfg.gray_p:
        out = [np.repeat(im.mean(axis=2, keepdims=True), 3, axis=2) for im in out]
    return [np.clip(im, 0, 255) for im in out]


def h264_recipe_text(augment: dict, items: str, coded_as: str) -> str:
    """A card recipe's words for H.264 augmentation, only where a config uses it (older
    recipes' text, which a reused network is checked by, stays as it was)."""
    share = float(augment.get("video_p", 0))
    if share <= 0:
        return ""
    crf = augment.get("video_crf", list(AugmentConfig.video_crf))
    return f" ({share:g} of the {items} coded as {coded_as} at CRF {crf[0]}-{crf[1]} instead of JPEG)"


def video_roundtrip(frames: list[np.ndarray], crf: int, scale: float) -> list[np.ndarray]:
    """Frames (same size) resized by `scale` (even sides), encoded as one H.264 clip at `crf`,
    decoded and resized back."""
    from engines.perturbations import h264_clip_roundtrip

    h, w = frames[0].shape[:2]
    sh, sw = 2 * max(8, round(h * scale / 2)), 2 * max(8, round(w * scale / 2))
    sized = frames if (sh, sw) == (h, w) else [
        cv2.resize(im, (sw, sh), interpolation=cv2.INTER_LINEAR) for im in frames]
    coded = h264_clip_roundtrip(sized, crf)
    if (sh, sw) == (h, w):
        return coded
    return [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in coded]


def shared_compression(clips: list[list[np.ndarray]], rng: np.random.Generator,
                       cfg: AugmentConfig) -> list[list[np.ndarray]]:
    """H.264 (share video_p) or else JPEG (jpeg_p), drawn once and applied to every clip alike:
    a clip (a window, or one still) is coded as one H.264 stream; JPEG codes each frame. With
    video_p 0 nothing is drawn for H.264, so recipes without it keep their random sequence."""
    if cfg.video_p > 0 and rng.random() < cfg.video_p:
        crf = int(rng.integers(cfg.video_crf[0], cfg.video_crf[1] + 1))
        scale = float(rng.uniform(*cfg.video_scale))
        return [video_roundtrip(clip, crf, scale) for clip in clips]
    if rng.random() < cfg.jpeg_p:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        return [[cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, q])[1],
                              cv2.IMREAD_COLOR) for im in clip] for clip in clips]
    return clips


def augment_pair(
    images: list[np.ndarray], rng: np.random.Generator, cfg: AugmentConfig
) -> list[np.ndarray]:
    """Colour jitter, downscale-and-up, blur, noise, JPEG, cutout: drawn once, applied to all."""
    out = [im.astype(np.float32) for im in images]
    size = images[0].shape[0]
    out = shared_colour(out, rng, cfg)
    if rng.random() < cfg.resize_p:
        f = rng.uniform(*cfg.resize_factor)
        small = max(8, round(size * f))
        down = [cv2.INTER_AREA, cv2.INTER_LINEAR][int(rng.integers(2))]
        up = [cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(2))]
        out = [cv2.resize(cv2.resize(im, (small, small), interpolation=down), (size, size), interpolation=up) for im in out]
    if rng.random() < cfg.blur_p:
        sigma = rng.uniform(0.4, 1.5)
        out = [cv2.GaussianBlur(im, (0, 0), sigma) for im in out]
    if rng.random() < cfg.noise_p:
        noise = rng.normal(0, rng.uniform(*cfg.noise_sigma), out[0].shape).astype(np.float32)
        out = [im + noise for im in out]
    out = [np.clip(im + 0.5, 0, 255).astype(np.uint8) for im in out]
    out = [clip[0] for clip in shared_compression([[im] for im in out], rng, cfg)]  # stills
    if rng.random() < cfg.cutout_p:
        h = int(rng.integers(size // 8, size // 3))
        w = int(rng.integers(size // 8, size // 3))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        value = rng.integers(0, 256, 3).astype(np.uint8)
        out = [im.copy() for im in out]
        for im in out:
            im[y : y + h, x : x + w] = value
    return out
