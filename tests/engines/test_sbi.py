"""Self-blended images: the blend stays on the face, differs from the real, is reproducible."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engines.synthesis.sbi import (
    ClipBlender,
    SBIConfig,
    SBIParams,
    blend_mask,
    face_ellipse_landmarks,
    hull_mask,
    self_blend,
    self_blend_clip,
)


def _face(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured image with a bright elliptic 'face' and landmarks on its outline."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 200, (size, size, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 2)
    centre = np.array([size / 2, size / 2 + 10], np.float32)
    cv2.ellipse(image, (int(centre[0]), int(centre[1])), (60, 80), 0, 0, 360, (150, 170, 210), -1)
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    landmarks = np.stack([centre[0] + 55 * np.cos(t), centre[1] + 75 * np.sin(t)], 1)
    return image, landmarks.astype(np.float32)


def test_blend_changes_only_pixels_near_the_face():
    image, landmarks = _face()
    rng = np.random.default_rng(1)
    # Allowed region: the hull grown by the affine (<= 5 % scale, 3 % shift), the dilated-hull
    # variant (8 %) and the mask blurs (kernels <= 25 px at the work size).
    region = hull_mask(image.shape[:2], landmarks).astype(np.uint8)
    region = cv2.dilate(region, np.ones((81, 81), np.uint8)) > 0
    for i in range(12):
        params = SBIParams.sample(rng)
        fake, mask = self_blend(image, landmarks, params)
        assert not ((mask > 1e-3) & ~region).any()
        assert mask.max() <= params.ratio + 1e-6
        changed = np.abs(fake.astype(int) - image.astype(int)).max(axis=2) > 1
        if params.altered == "source":
            # The altered face pasted onto the untouched frame: nothing changes outside.
            assert not (changed & ~region).any()
        else:
            # The untouched face pasted onto the altered frame: outside is the altered frame.
            from engines.synthesis.sbi import alter

            outside = ~region
            assert np.array_equal(fake[outside], alter(image, params)[outside])


def test_real_and_fake_differ_inside_the_face():
    image, landmarks = _face()
    params = SBIParams.sample(np.random.default_rng(3), SBIConfig().strong())
    fake, mask = self_blend(image, landmarks, params)
    inside = hull_mask(image.shape[:2], landmarks) > 0
    diff = np.abs(fake.astype(int) - image.astype(int)).max(axis=2)
    assert mask[inside].mean() > 0.3
    assert diff[inside].mean() > 1.0


def test_deterministic_under_a_fixed_seed():
    image, landmarks = _face()
    a = self_blend(image, landmarks, SBIParams.sample(np.random.default_rng(42)))
    b = self_blend(image, landmarks, SBIParams.sample(np.random.default_rng(42)))
    c = self_blend(image, landmarks, SBIParams.sample(np.random.default_rng(43)))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("hull", ["full", "inner", "lower", "dilated"])
def test_hull_variants(hull):
    image, landmarks = _face()
    full = hull_mask(image.shape[:2], landmarks, "full").sum()
    area = hull_mask(image.shape[:2], landmarks, hull).sum()
    assert area > 0
    if hull in ("inner", "lower"):
        assert area < full
    if hull == "dilated":
        assert area > full
    mask = blend_mask(image.shape[:2], landmarks, SBIParams(hull=hull))
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32


def test_clip_variant_is_consistent_with_small_jitter():
    image, landmarks = _face()
    params = SBIParams.sample(np.random.default_rng(5), SBIConfig().strong())
    frames = [image] * 4
    fakes, masks = self_blend_clip(frames, [landmarks] * 4, params, np.random.default_rng(0))
    assert len(fakes) == 4
    base = blend_mask(image.shape[:2], landmarks, params)
    for m in masks:
        # Same blend every frame, moved a little.
        assert np.abs(m - base).mean() < 0.02
    assert any(not np.array_equal(masks[0], m) for m in masks[1:])
    # No jitter: identical frames.
    still = ClipBlender(params, np.random.default_rng(0), jitter=0.0)
    assert np.array_equal(still(image, landmarks)[0], still(image, landmarks)[0])


def test_ellipse_landmarks_from_keypoints():
    kps = np.array([[100, 100], [140, 100], [120, 125], [120, 145]], np.float32)
    pts = face_ellipse_landmarks(kps)
    assert pts.shape == (64, 2)
    centre = pts.mean(0)
    assert 100 < centre[0] < 140 and 100 < centre[1] < 140
    image = np.full((256, 256, 3), 128, np.uint8)
    fake, mask = self_blend(image, pts, SBIParams(rgb_shift=(30.0, 0.0, 0.0)))
    assert mask[120, 120] > 0.5 and mask[5, 5] == 0


def test_sbi_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, engines.synthesis.sbi, engines.manifest, engines.metrics; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
