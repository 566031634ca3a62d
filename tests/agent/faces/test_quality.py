"""Quality gate: faces Verity cannot judge are "unknown" with a reason."""

import cv2
import numpy as np

from agent.faces.quality import QualityGate
from engines.faces import AlignSpec, align_faces


def crop_and_keypoints(image, detector):
    det = detector.detect(image)
    assert len(det) == 1
    return align_faces(image, det.keypoints, AlignSpec())[0], det.keypoints[0]


def test_clear_frontal_face_passes(astronaut, detector):
    report = QualityGate().assess(*crop_and_keypoints(astronaut, detector))
    assert report.ok, report


def test_blurred_dark_small_and_turned_faces_fail_with_reasons(astronaut, detector):
    gate = QualityGate()
    crop, keypoints = crop_and_keypoints(astronaut, detector)
    blurred = cv2.GaussianBlur(crop, (0, 0), 4)
    assert "too_blurred" in gate.assess(blurred, keypoints).reasons
    dark = (crop * 0.08).astype(np.uint8)
    assert "too_dark" in gate.assess(dark, keypoints).reasons
    assert "too_small" in gate.assess(crop, keypoints * 0.12).reasons
    eye_distance = keypoints[1, 0] - keypoints[0, 0]
    turned = keypoints.copy()
    turned[2, 0] += 1.2 * gate.config.max_yaw * eye_distance  # nose past the limit, to one side
    assert "turned_away" in gate.assess(crop, turned).reasons
    slightly = keypoints.copy()
    slightly[2, 0] += 0.5 * gate.config.max_yaw * eye_distance  # half way: still judged
    assert gate.assess(crop, slightly).ok
