"""Self-reenacted windows (engines.synthesis.reenact): the warp puts the reference's texture on
each frame's geometry, the reference frame stays as it was, and outside the mask nothing moves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engines.faces.align import AlignSpec
from engines.synthesis.reenact import (
    ReenactParams,
    reenact_window,
    resample,
    tps_map,
    warp_to,
)
from engines.synthesis.sbi import SBIConfig, face_ellipse_landmarks
from engines.train.augment import AugmentConfig
from engines.train.temporal_data import WindowFakeConfig, WindowMaker, blend_window

SIZE = 128
LOOSE = AlignSpec(48, 3.0, 0.55).widened(1.5, SIZE)


def textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(30, 220, (SIZE, SIZE, 3)).astype(np.uint8), (0, 0), 1.5)


def ellipse_mesh(shift=(0.0, 0.0), stretch: float = 1.0) -> np.ndarray:
    """468 pseudo-landmarks filling the face ellipse (4 concentric rings of 117, as the face
    mesh covers the face), moved and stretched vertically (a mouth opening)."""
    kps = LOOSE.destination_points()
    ring = face_ellipse_landmarks(kps, 117).astype(np.float64)
    centre = ring.mean(0)
    mesh = np.concatenate([centre + (ring - centre) * f for f in (1.0, 0.75, 0.5, 0.25)])
    mesh[:, 1] = centre[1] + (mesh[:, 1] - centre[1]) * stretch
    return (mesh + np.asarray(shift)).astype(np.float32)


def test_the_spline_takes_each_target_point_to_its_source_point():
    rng = np.random.default_rng(0)
    dst = np.unique(rng.integers(10, SIZE - 10, (30, 2)), axis=0)  # on pixels
    src = dst + rng.normal(0, 3, dst.shape)
    map_x, map_y = tps_map(dst, src, (SIZE, SIZE), grid_step=1)
    got = np.stack([map_x[dst[:, 1], dst[:, 0]], map_y[dst[:, 1], dst[:, 0]]], 1)
    np.testing.assert_allclose(got, src, atol=1e-3)



def test_the_coarse_grid_follows_the_exact_field_of_a_face_motion():
    # A face's motion field is smooth: evaluated every 8 px (as used) and interpolated, it
    # stays within a fraction of a pixel of the exact spline.
    dst, src = ellipse_mesh((2.0, -1.0), stretch=1.08)[::3], ellipse_mesh()[::3]
    exact = tps_map(dst, src, (SIZE, SIZE), grid_step=1)
    coarse = tps_map(dst, src, (SIZE, SIZE))
    assert max(np.abs(c - e).max() for c, e in zip(coarse, exact)) < 0.25


def test_identical_geometry_leaves_the_image_as_it_was():
    image = textured()
    mesh = ellipse_mesh()
    out = warp_to(image, mesh, mesh)
    assert np.abs(out.astype(int) - image.astype(int)).max() <= 1


def test_a_face_that_moves_rigidly_is_reproduced_from_the_reference():
    # A texture translated by 3 px with its landmarks: warping frame 0 onto frame 1's landmarks
    # must give frame 1 inside the face (texture that moves with the face is what a warp makes).
    image = textured()
    moved = cv2.warpAffine(image, np.float32([[1, 0, 3], [0, 1, 0]]), (SIZE, SIZE),
                           borderMode=cv2.BORDER_REFLECT)
    out = warp_to(image, ellipse_mesh(), ellipse_mesh((3.0, 0.0)))
    inner = (slice(SIZE // 3, 2 * SIZE // 3), slice(SIZE // 3, 2 * SIZE // 3))
    diff = np.abs(out[inner].astype(int) - moved[inner].astype(int))
    unwarped = np.abs(image[inner].astype(int) - moved[inner].astype(int))
    assert diff.mean() < unwarped.mean() / 4, (diff.mean(), unwarped.mean())


@pytest.mark.parametrize("mode", ["full", "paste"])
def test_every_frame_takes_the_reference_texture_inside_the_mask_only(mode):
    t = 5
    crops = np.stack([textured(seed) for seed in range(t)])  # a new texture every frame
    mesh = np.stack([ellipse_mesh(stretch=1.0 + 0.03 * i) for i in range(t)])
    params = ReenactParams(reference="random", mode=mode, mask_blur=0.03)
    fake, masks, ref = reenact_window(crops, mesh, params, np.random.default_rng(3))
    assert fake.shape == crops.shape and fake.dtype == np.uint8 and masks.shape == crops.shape[:3]
    np.testing.assert_array_equal(fake[ref], crops[ref])  # the source frame is itself
    assert masks[ref].max() == 0
    centre = (slice(SIZE // 2 - 8, SIZE // 2 + 8), slice(SIZE // 2 - 8, SIZE // 2 + 8))
    for i in range(t):
        if i == ref:
            continue
        assert masks[i][centre].min() > 0.99
        warped = warp_to(crops[ref], mesh[ref], mesh[i])  # the reference on frame i's geometry
        to_ref = np.abs(fake[i][centre].astype(int) - warped[centre].astype(int)).max()
        to_own = np.abs(fake[i][centre].astype(int) - crops[i][centre].astype(int)).mean()
        assert to_ref <= 1 and to_own > 10  # the face carries the reference's texture
        outside = masks[i] < 1e-3
        assert outside.any()
        np.testing.assert_array_equal(fake[i][outside], crops[i][outside])  # the rest is real
    if mode == "full":  # the whole head: the mask reaches far beyond the face ellipse
        paste = reenact_window(crops, mesh, ReenactParams(mode="paste", mask_blur=0.03),
                               np.random.default_rng(3))[1]
        assert masks.sum() > 1.5 * paste.sum()


def test_farthest_reference_is_the_frame_whose_landmarks_differ_most():
    mesh = np.stack([ellipse_mesh(stretch=s) for s in (1.0, 1.0, 1.0, 1.3, 1.0)])
    crops = np.stack([textured(i) for i in range(5)])
    _, _, ref = reenact_window(crops, mesh, ReenactParams(reference="farthest"),
                               np.random.default_rng(0))
    assert ref == 3


def test_resampling_shifts_by_less_than_a_pixel():
    crops = np.stack([textured(0), textured(1)])
    out = resample(crops, np.random.default_rng(0))
    assert out.shape == crops.shape and out.dtype == np.uint8
    assert 0 < np.abs(out.astype(int) - crops.astype(int)).mean() < 12


def test_reenact_is_a_window_variant_of_the_training_pairs():
    t = 4
    crops = np.stack([textured(seed) for seed in range(t)])
    mesh = np.stack([ellipse_mesh(stretch=1.0 + 0.04 * i) for i in range(t)])
    fakes = WindowFakeConfig.from_dict({"variants": {"reenact": 1.0}, "reenact_full_p": 0.0})
    fake, masks, info = blend_window(crops, mesh, np.random.default_rng(0), SBIConfig(), fakes)
    assert info["variant"] == "reenact" and info["mode"] == "paste"
    assert (fake != crops).any() and masks.max() > 0.99
    target = AlignSpec(48, 3.0, 0.55)
    maker = WindowMaker(LOOSE, target, SBIConfig(), AugmentConfig(), fakes)
    real_w, fake_w, mask_w, info = maker(crops, mesh, np.random.default_rng(1))
    assert real_w.shape == fake_w.shape == (t, 48, 48, 3) and mask_w.shape == (t, 48, 48)
    with pytest.raises(ValueError, match="unknown"):
        WindowFakeConfig.from_dict({"variants": {"reenactment": 1.0}})


def test_kept_detail_is_each_frames_own_while_the_coarse_face_is_the_references():
    # Fresh noise every frame (as in a re-encoded fake) on a smooth face that differs per frame.
    t = 3
    rng = np.random.default_rng(5)
    smooth = [cv2.GaussianBlur(textured(s), (0, 0), 4) for s in range(t)]
    noise = [rng.normal(0, 12, (SIZE, SIZE, 3)) for _ in range(t)]
    crops = np.stack([np.clip(s + n, 0, 255).astype(np.uint8) for s, n in zip(smooth, noise)])
    mesh = np.stack([ellipse_mesh()] * t)
    params = ReenactParams(reference="random", mode="paste", mask_blur=0.03, keep_detail=1.5)
    fake, masks, ref = reenact_window(crops, mesh, params, np.random.default_rng(0))
    centre = (slice(SIZE // 2 - 10, SIZE // 2 + 10), slice(SIZE // 2 - 10, SIZE // 2 + 10))
    i = (ref + 1) % t

    def fine(x):
        x = x.astype(np.float32)
        return (x - cv2.GaussianBlur(x, (0, 0), 1.5))[centre]

    def coarse(x):
        return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 3)[centre]

    corr = np.corrcoef(fine(fake[i]).ravel(), fine(crops[i]).ravel())[0, 1]
    assert corr > 0.9  # the frame's own noise, not the reference's frozen one
    assert np.abs(coarse(fake[i]) - coarse(crops[ref])).mean() < np.abs(
        coarse(fake[i]) - coarse(crops[i])).mean() / 2  # the face itself is the reference's


@pytest.mark.parametrize("value", [[2.0], [0, 1.0], [2.0, 1.0], 1.5, ["a", "b"]])
def test_a_bad_kept_detail_range_is_named_before_training(value):
    with pytest.raises(ValueError, match="fakes.reenact_keep_detail"):
        WindowFakeConfig.from_dict({"reenact_keep_detail": value})
    assert WindowFakeConfig.from_dict({"reenact_keep_detail": [1, 2]}).reenact_keep_detail == (1, 2)


def test_a_bad_whole_head_share_is_named():
    with pytest.raises(ValueError, match="fakes.reenact_full_p"):
        WindowFakeConfig.from_dict({"reenact_full_p": 1.5})
