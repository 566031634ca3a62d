"""The head-turn measure the quality gate thresholds (faces.quality.max_yaw)."""

import numpy as np
import pytest

from engines.faces.pose import yaw_ratio

FRONTAL = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [60.0, 90.0]])  # eyes, nose, mouth


def turned(nose_shift: float) -> np.ndarray:
    k = FRONTAL.copy()
    k[2, 0] += nose_shift * 40.0  # in eye distances
    return k


def test_frontal_is_zero_and_a_turn_reads_in_eye_distances_either_way():
    assert yaw_ratio(FRONTAL) == pytest.approx(0.0, abs=1e-6)
    assert yaw_ratio(turned(0.3)) == pytest.approx(0.3, abs=1e-5)
    assert yaw_ratio(turned(-0.3)) == pytest.approx(0.3, abs=1e-5)


def test_independent_of_face_size_position_and_head_tilt():
    k = turned(0.45)
    angle = np.deg2rad(25.0)  # in-plane tilt: the nose offset is measured along the eye line
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (k - k.mean(0)) @ rotation.T * 3.0 + [500.0, 200.0]
    assert yaw_ratio(moved) == pytest.approx(0.45, abs=1e-4)


def test_one_value_per_face_for_a_batch():
    batch = np.stack([FRONTAL, turned(0.2), turned(0.7)])
    np.testing.assert_allclose(yaw_ratio(batch), [0.0, 0.2, 0.7], atol=1e-5)
