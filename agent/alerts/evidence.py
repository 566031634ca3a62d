"""Evidence attached to a new alert: the frame with the face boxed, and an explanation map.

The explanation is occlusion sensitivity: grey out each cell of a grid over the aligned face
crop, re-score, and paint how much the fake logit drops. It needs one extra batch of
inferences per new alert (not per frame), and no gradients, so it works on every runtime.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def frame_snapshot(image: np.ndarray, box: np.ndarray, label: str, quality: int = 85) -> bytes:
    canvas = image.copy()
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thickness = max(2, image.shape[1] // 400)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), thickness)
    cv2.putText(
        canvas, label, (x1, max(y1 - 8, 16)), cv2.FONT_HERSHEY_SIMPLEX,
        max(0.5, image.shape[1] / 1600), (0, 0, 255), thickness,
    )
    return _jpeg(canvas, quality)


def occlusion_map(
    crop: np.ndarray, logits_of: Callable[[np.ndarray], np.ndarray], grid: int = 6
) -> np.ndarray:
    """(grid, grid) map in [0, 1]: how much hiding each cell lowers the fake logit."""
    size = crop.shape[0]
    cell = size / grid
    fill = cv2.GaussianBlur(crop, (0, 0), sigmaX=cell / 2)  # hide detail, keep colour
    variants = [crop]
    for gy in range(grid):
        for gx in range(grid):
            v = crop.copy()
            ys, ye = int(gy * cell), int((gy + 1) * cell)
            xs, xe = int(gx * cell), int((gx + 1) * cell)
            v[ys:ye, xs:xe] = fill[ys:ye, xs:xe]
            variants.append(v)
    logits = logits_of(np.stack(variants))
    drop = np.clip(logits[0] - logits[1:], 0, None).reshape(grid, grid)
    return drop / drop.max() if drop.max() > 0 else drop


def explanation_image(crop: np.ndarray, heat: np.ndarray, size: int = 256, quality: int = 85) -> bytes:
    face = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
    heat_img = cv2.resize((heat * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(heat_img, cv2.COLORMAP_JET)
    blended = cv2.addWeighted(face, 0.6, colour, 0.4, 0)
    return _jpeg(np.concatenate([face, blended], axis=1), quality)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
