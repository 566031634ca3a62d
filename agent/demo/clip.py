"""A synthetic test clip: a real face photo that, part-way through, gets self-blended.

The photo is scikit-image's astronaut (public domain, shipped inside the scikit-image wheel),
so the clip can be built on any machine without downloads. The clip is synthetic: a still
photo with a slow camera-like drift and sensor noise, H.264-encoded. From `onset` on, the face
is replaced by a self-blended copy of itself (engines.synthesis.sbi) with one parameter set
and small per-frame jitter, as a face-swap video would flicker at the blend boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from engines.faces.mesh import FaceMesh
from engines.synthesis.sbi import ClipBlender, SBIConfig, SBIParams


@dataclass(frozen=True)
class DemoClip:
    path: Path
    fps: int
    frames: int
    onset: float | None
    """Stream time (s) of the first manipulated frame; None for a real-only clip."""
    width: int
    height: int


def astronaut_bgr(width: int, height: int) -> np.ndarray:
    """The astronaut photo cropped to the frame's aspect ratio around her face, resized."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512 x 512
    aspect = width / height
    crop_h = int(min(512, 512 / aspect))
    crop_w = int(crop_h * aspect)
    x0 = int(np.clip(225 - crop_w / 2, 0, 512 - crop_w))  # her face is centred near x=225
    return cv2.resize(photo[:crop_h, x0 : x0 + crop_w], (width, height), interpolation=cv2.INTER_AREA)


def _camera_motion(i: int, fps: int, width: int, height: int) -> np.ndarray:
    """A slow drift (translation, zoom, roll) like a hand-held or auto-framing camera."""
    t = i / fps
    dx = 0.012 * width * math.sin(2 * math.pi * t / 5.0)
    dy = 0.008 * height * math.sin(2 * math.pi * t / 7.0 + 1.0)
    zoom = 1.0 + 0.02 * math.sin(2 * math.pi * t / 6.0)
    roll = 1.0 * math.sin(2 * math.pi * t / 8.0)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), roll, zoom)
    matrix[:, 2] += (dx, dy)
    return matrix


def build_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 25,
    real_seconds: float = 4.0,
    fake_seconds: float = 4.0,
    seed: int = 7,
    crf: int = 20,
) -> DemoClip:
    """Write the clip (H.264 in MP4, no B-frames) and say where the manipulation starts."""
    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(seed)
    base = astronaut_bgr(width, height)
    with FaceMesh() as mesh:
        landmarks = mesh.largest(base)
    if landmarks is None:
        raise RuntimeError("the face mesh found no face in the demo photo")
    # The face (source) is the altered side, as in a face swap; the background stays intact.
    params = replace(SBIParams.sample(rng, _demo_blend_config()), altered="source", down_factor=2.0)
    blender = ClipBlender(params, rng, jitter=1.0)
    # Blend inside a region around the face only: the same result, a fraction of the cost.
    x0, y0 = np.maximum(landmarks.min(0) - 0.5 * np.ptp(landmarks, 0), 0).astype(int)
    x1, y1 = np.minimum(landmarks.max(0) + 0.5 * np.ptp(landmarks, 0), (width, height)).astype(int)
    region_landmarks = landmarks - (x0, y0)

    def manipulated() -> np.ndarray:
        out = base.copy()
        out[y0:y1, x0:x1] = blender(base[y0:y1, x0:x1], region_landmarks)[0]
        return out

    real_frames = round(real_seconds * fps)
    total = real_frames + round(fake_seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0", "g": str(fps)}
        for i in range(total):
            still = base if i < real_frames else manipulated()
            frame = cv2.warpAffine(
                still, _camera_motion(i, fps, width, height), (width, height),
                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT,
            )
            noise = np.empty(frame.shape, np.int16)
            cv2.randn(noise, 0, 2)  # sensor noise; cv2's generator is ~20x numpy's here
            frame = cv2.add(frame, noise, dtype=cv2.CV_8U)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    onset = real_frames / fps if total > real_frames else None
    return DemoClip(path, fps, total, onset, width, height)


def _demo_blend_config() -> SBIConfig:
    # A clearly visible manipulation: full face hull, full blend, a colour shift and a
    # down-and-up resample, as a cheap face swap would leave.
    return SBIConfig(
        hull_weights={"full": 1.0}, blend_ratios=(1.0,), degrade_p=(1.0, 0.0), elastic_p=0.0
    )
