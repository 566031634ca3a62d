"""Aligned face crops without a data folder: the demo photo, real and self-blended, varied.

Used where a command needs representative model inputs on any machine (the FP16 check).
"""

from __future__ import annotations

import numpy as np

from agent.demo.clip import astronaut_bgr
from engines.faces import AlignSpec, align_faces
from engines.faces.mesh import FaceMesh
from engines.synthesis.sbi import SBIParams, self_blend


def sample_face_crops(spec: AlignSpec, count: int = 64, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8: half real, half self-blended; jittered pose and light."""
    from engines.faces import create_detector
    from engines.faces.detectors import MediaPipeDetectorConfig

    rng = np.random.default_rng(seed)
    image = astronaut_bgr(640, 480)
    keypoints = create_detector(MediaPipeDetectorConfig()).detect(image).keypoints[0]
    with FaceMesh() as mesh:
        landmarks = mesh.largest(image)
    crops = []
    for i in range(count):
        source = image if i % 2 == 0 or landmarks is None else self_blend(image, landmarks, SBIParams.sample(rng), rng)[0]
        jitter = keypoints + rng.normal(0, 1.5, keypoints.shape).astype(np.float32)
        crop = align_faces(source, jitter[None], spec)[0].astype(np.float32)
        crop = crop * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
    return np.stack(crops)
