"""Burned-in overlays for training pairs: watermarks, logos and bars drawn over a crop.

Real footage and fakes alike carry app watermarks, channel logos and lower-third bars. A
model that never saw one reads it as face evidence: a generator's watermark inside the crop
moved the temporal model's score on those fakes by up to 0.17. One overlay is drawn per
window and composited identically onto the real and the fake window, so it carries no label;
it is static in the frame, so in the face-aligned crop it drifts by a small random walk.

Deliberately not the robustness sweep's `overlay_text` (a name tag on a dark box) or its
border / picture-in-picture: those stay unseen, so the sweep still measures generalization.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import cv2
import numpy as np

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN,
)
_CHARS = string.ascii_letters + string.digits + "@#.:_- "


@dataclass(frozen=True)
class Overlay:
    """A colour layer and its opacity (0..1), both crop-sized, plus its drift per frame."""

    colour: np.ndarray  # (S, S, 3) float32
    alpha: np.ndarray  # (S, S) float32
    drift: np.ndarray  # (T, 2) pixel offset of each frame

    def at(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(colour, alpha[..., None]) moved to one frame's drift."""
        dx, dy = self.drift[frame]
        colour, alpha = self.colour, self.alpha
        if dx or dy:
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            size = alpha.shape[1], alpha.shape[0]
            alpha = cv2.warpAffine(alpha, shift, size, flags=cv2.INTER_LINEAR)
            colour = cv2.warpAffine(colour, shift, size, flags=cv2.INTER_LINEAR)
        return colour, alpha[..., None]

    def apply(self, image: np.ndarray, frame: int) -> np.ndarray:
        """The overlay composited onto one float32 frame at its drift."""
        return composite(image, *self.at(frame))


def composite(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`colour` over `image` with opacity `alpha` (H, W, 1)."""
    return image * (1 - alpha) + colour * alpha


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.4:  # white, black or grey marks are the most common
        v = float(rng.choice([255.0, 0.0, rng.uniform(60, 200)]))
        return v, v, v
    return tuple(float(c) for c in rng.uniform(0, 255, 3))


def _row(rng: np.random.Generator, size: int) -> int:
    """A mark's row: mostly the crop's top or bottom band (where watermarks, captions and
    tickers sit relative to a face), sometimes anywhere (over the face: label noise)."""
    u = rng.random()
    if u < 0.55:
        return int(rng.uniform(0.72, 1.0) * size)
    if u < 0.75:
        return int(rng.uniform(0.0, 0.22) * size)
    return int(rng.uniform(0.0, 1.0) * size)


def _text(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    n = int(rng.integers(3, 15))
    text = "".join(rng.choice(list(_CHARS), n)).strip() or "wm"
    font = int(rng.choice(_FONTS))
    height = rng.uniform(0.05, 0.16) * size
    (_, th), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = height / max(th, 1)
    thickness = int(rng.integers(1, 4))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    x = int(rng.integers(-tw // 2, size - tw // 2 + 1))
    y = min(max(_row(rng, size) + th // 2, th), size + th // 2)
    if rng.random() < 0.4:  # dark outline or shadow under light text
        off = int(rng.integers(0, 3))
        cv2.putText(canvas, text, (x + off, y + off), font, scale, (0, 0, 0), thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(mask, text, (x + off, y + off), font, scale, 1.0, thickness + 2,
                    cv2.LINE_AA)
    cv2.putText(canvas, text, (x, y), font, scale, _random_colour(rng), thickness, cv2.LINE_AA)
    cv2.putText(mask, text, (x, y), font, scale, 1.0, thickness, cv2.LINE_AA)


def _logo(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    r = int(rng.uniform(0.04, 0.12) * size)
    cx, cy = int(rng.integers(0, size)), _row(rng, size)
    colour = _random_colour(rng)
    if rng.random() < 0.5:
        cv2.circle(canvas, (cx, cy), r, colour, -1, cv2.LINE_AA)
        cv2.circle(mask, (cx, cy), r, 1.0, -1, cv2.LINE_AA)
    else:
        w, h = r * 2, int(r * rng.uniform(0.6, 1.6))
        cv2.rectangle(canvas, (cx - w // 2, cy - h // 2), (cx + w // 2, cy + h // 2), colour, -1)
        cv2.rectangle(mask, (cx - w // 2, cy - h // 2), (cx + w // 2, cy + h // 2), 1.0, -1)
    if rng.random() < 0.5:  # a glyph on the logo
        inner = np.zeros_like(mask)
        _text(canvas, inner, rng)
        mask[:] = np.maximum(mask, inner)


def _bar(canvas: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    h = int(rng.uniform(0.06, 0.18) * size)
    y = min(max(_row(rng, size) - h // 2, 0), size - h)
    x0 = 0 if rng.random() < 0.6 else int(rng.integers(0, size // 2))
    x1 = size if rng.random() < 0.6 else int(rng.integers(size // 2, size + 1))
    cv2.rectangle(canvas, (x0, y), (x1, y + h), _random_colour(rng), -1)
    cv2.rectangle(mask, (x0, y), (x1, y + h), 1.0, -1)


_KINDS = (_text, _text, _text, _logo, _bar)


def random_overlay(rng: np.random.Generator, size: int, frames: int,
                   max_drift: float = 1.0) -> Overlay:
    """One to three marks of random kind, opacity and place on a `size` crop."""
    canvas = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        mark_c = np.zeros_like(canvas)
        mark_a = np.zeros_like(alpha)
        _KINDS[int(rng.integers(len(_KINDS)))](mark_c, mark_a, rng)
        opacity = float(rng.uniform(0.35, 1.0))
        mark_a *= opacity
        canvas = canvas * (1 - mark_a[..., None]) + mark_c * mark_a[..., None]
        alpha = alpha + mark_a * (1 - alpha)
    # Premultiplied above: recover the colour under the combined opacity.
    colour = np.where(alpha[..., None] > 1e-6, canvas / np.maximum(alpha[..., None], 1e-6), 0)
    step = float(rng.uniform(0, max_drift))
    drift = np.cumsum(rng.normal(0, step, (frames, 2)), axis=0) if step else np.zeros((frames, 2))
    drift -= drift[0]
    return Overlay(colour.astype(np.float32), alpha, drift.astype(np.float32))
