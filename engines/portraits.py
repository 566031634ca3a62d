"""A pack on real portrait photos that ship inside installed packages (never training data).

A model that learnt "portrait" for "generated" shows it here: these are real photos. Used by
`verity engines check-portraits` and by the trainers' cards, so it belongs to neither.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.faces.align import AlignSpec
from engines.perturbations import jpeg_roundtrip
from engines.registry import calibrated

Scorer = Callable[[np.ndarray], np.ndarray]  # uint8 crops (N, H, W, 3) -> logits (N,)


def portrait_files() -> dict[str, Path]:
    """Real portrait photos that ship inside installed packages (never in the training data):
    name -> path, for those whose package is installed."""
    import importlib.util

    where = {
        "skimage astronaut": ("skimage", "data/astronaut.png"),
        "matplotlib grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
        "insightface Tom_Hanks": ("insightface", "data/images/Tom_Hanks_54745.png"),
        "insightface t1 (group)": ("insightface", "data/images/t1.jpg"),
    }
    found = {}
    for name, (module, rel) in where.items():
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            found[name] = path
    return found


def real_portraits(scorer: Scorer, spec: AlignSpec, temperature: float, bias: float,
                   threshold: float, still_interocular: float = 48.0,
                   jpeg_quality: int = 90) -> dict:
    """Every face (mediapipe, both ranges) of the real portraits of `portrait_files`, scored as
    the agent scores a photo (native size) and under the stills protocol (rescaled to
    `still_interocular` px eye distance, only ever down, JPEG q`jpeg_quality`). A model that
    learnt "portrait" for "generated" shows it here: these are real photos."""
    import cv2

    from engines.faces import align_faces, create_detector
    from engines.faces.detectors import MediaPipeDetectorConfig

    detector = create_detector(MediaPipeDetectorConfig(range="both"))
    rows = []
    for name, path in portrait_files().items():
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        det = detector.detect(image)
        for k, iod in zip(det.keypoints, det.interocular):
            factor = min(1.0, still_interocular / float(iod))
            small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            still = jpeg_roundtrip(small, jpeg_quality)
            p_native = calibrated(scorer(align_faces(image, k[None], spec)), temperature, bias)[0]
            p_still = calibrated(scorer(align_faces(still, (k * factor)[None], spec)),
                                temperature, bias)[0]
            rows.append({"image": name, "eye_px": round(float(iod), 1),
                         "p_native": round(float(p_native), 4), "p_still": round(float(p_still), 4)})
    scored = [r[key] for r in rows for key in ("p_native", "p_still")]
    return {
        "faces": rows,
        "above_threshold": int(sum(p >= threshold for p in scored)),
        "scored": len(scored),
        "protocol": "real photos shipped in installed packages (" + ", ".join(portrait_files())
        + "); every face found by mediapipe (both ranges), scored at native size and under the "
        f"stills protocol (eye distance {still_interocular:g} px, JPEG q{jpeg_quality}); "
        f"threshold {threshold:.4f}",
    }
