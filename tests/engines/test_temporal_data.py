"""Temporal training data on synthetic windows (no data folder): clip-consistent self-blends,
shared augmentation, window bookkeeping, and window extraction on the demo clip."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engines.data.clips import ClipSpec, spread_windows, window_starts
from engines.faces.align import AlignSpec
from engines.synthesis.sbi import SBIConfig, face_ellipse_landmarks
from engines.train.augment import AugmentConfig
from engines.train.temporal_data import (
    WindowBank,
    WindowFakeConfig,
    WindowMaker,
    augment_window,
    blend_window,
    centre_window,
    smooth_mesh,
)

TARGET = AlignSpec(48, 3.0, 0.55)
LOOSE = TARGET.widened(1.5, 96)
T = 6


def _window(moving: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured synthetic 'face' window (T, S, S, 3) and ellipse landmarks per frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (LOOSE.size, LOOSE.size, 3)).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 2)
    kps = LOOSE.destination_points()
    crops, mesh = [], []
    for t in range(T):
        shift = np.float32([t * 0.7, 0]) if moving else np.float32([0, 0])
        m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        crops.append(cv2.warpAffine(base, m, (LOOSE.size, LOOSE.size)))
        mesh.append(face_ellipse_landmarks(kps + shift, 468))
    return np.stack(crops), np.stack(mesh).astype(np.float32)


def _strong() -> SBIConfig:
    return SBIConfig(blend_ratios=(1.0,), rgb_shift=30.0, elastic_p=0.0)


def test_clip_blend_without_jitter_is_identical_on_identical_frames():
    crops, mesh = _window()
    fakes = WindowFakeConfig(jitter=(0.0, 0.0))
    fake, masks, info = blend_window(crops, mesh, np.random.default_rng(1), _strong(), fakes, "clip")
    assert info["variant"] == "clip" and info["blended"] == T
    assert fake.shape == crops.shape and fake.dtype == np.uint8
    assert masks.shape == crops.shape[:3] and masks.max() > 0.5
    for t in range(1, T):  # one SBIParams for the window: same mask, same fake
        np.testing.assert_array_equal(masks[t], masks[0])
        np.testing.assert_array_equal(fake[t], fake[0])
    assert not np.array_equal(fake[0], crops[0])


def test_clip_blend_jitter_makes_the_boundary_flicker_a_little():
    crops, mesh = _window()
    fakes = WindowFakeConfig(jitter=(3.0, 3.0))
    _, masks, _ = blend_window(crops, mesh, np.random.default_rng(2), _strong(), fakes, "clip")
    diffs = [float(np.abs(masks[t] - masks[t - 1]).mean()) for t in range(1, T)]
    assert max(diffs) > 0  # the mask moves between frames ...
    assert max(diffs) < 0.3 * float(masks.mean())  # ... but only slightly
    # Only the boundary moves: a large core is fully blended in every frame.
    core = (masks > 0.99).all(axis=0)
    assert core.sum() > 0.5 * (masks[0] > 0.99).sum()
    ring = (masks.max(0) - masks.min(0)) > 0.01
    assert not (ring & core).any()


def test_blend_is_reproducible_from_the_seed():
    crops, mesh = _window(moving=True)
    fakes = WindowFakeConfig()
    a = blend_window(crops, mesh, np.random.default_rng(5), SBIConfig(), fakes)
    b = blend_window(crops, mesh, np.random.default_rng(5), SBIConfig(), fakes)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]


def test_lower_variant_blends_only_the_lower_face():
    crops, mesh = _window()
    fake, masks, info = blend_window(crops, mesh, np.random.default_rng(3), _strong(),
                                     WindowFakeConfig(jitter=(0.0, 0.0)), "lower")
    assert info["hull"] == "lower"
    ys = mesh[0][:, 1]
    top = int(ys.min() + 0.3 * (ys.max() - ys.min()))
    assert masks[:, :top].max() < 0.05 and masks.max() > 0.5


def test_partial_variant_blends_a_strict_sub_span():
    crops, mesh = _window()
    for seed in range(6):
        fake, masks, info = blend_window(crops, mesh, np.random.default_rng(seed), _strong(),
                                         WindowFakeConfig(partial_min=2), "partial")
        active = masks.reshape(T, -1).max(1) > 0
        assert 2 <= info["blended"] == active.sum() < T
        idx = np.flatnonzero(active)
        assert (np.diff(idx) == 1).all()  # one contiguous span
        for t in np.flatnonzero(~active):
            np.testing.assert_array_equal(fake[t], crops[t])


def test_drift_variant_changes_the_blend_strength_over_the_window():
    crops, mesh = _window()
    _, masks, _ = blend_window(crops, mesh, np.random.default_rng(4), _strong(),
                               WindowFakeConfig(jitter=(0.0, 0.0)), "drift")
    peaks = masks.reshape(T, -1).max(1)
    steps = np.diff(peaks)
    assert abs(peaks[-1] - peaks[0]) > 0.01
    assert (steps >= -1e-6).all() or (steps <= 1e-6).all()  # monotonic


def test_augmentation_is_shared_by_the_real_and_the_fake_window():
    crops, _ = _window(moving=True)
    frames = list(centre_window(crops, LOOSE, TARGET))
    cfg = AugmentConfig(color_p=1.0, hue_shift=8, jpeg_p=1.0, resize_p=1.0, blur_p=1.0,
                        noise_p=1.0, cutout_p=1.0, overlay_p=1.0)
    real, fake = augment_window(frames, [f.copy() for f in frames], np.random.default_rng(0), cfg)
    for r, f in zip(real, fake):  # identical input -> identical output, frame by frame
        np.testing.assert_array_equal(r, f)
    # Noise is drawn per frame (not frozen over the window), colour once per window.
    a, b = augment_window([frames[0], frames[0]], [frames[0], frames[0]],
                          np.random.default_rng(1), AugmentConfig(noise_p=1.0, jpeg_p=0.0,
                                                                  color_p=0.0, resize_p=0.0,
                                                                  blur_p=0.0, cutout_p=0.0))
    assert not np.array_equal(a[0], a[1])


def test_overlay_marks_both_windows_alike_and_drifts_across_the_window():
    crops, _ = _window()
    frames = list(centre_window(crops, LOOSE, TARGET))
    only_overlay = AugmentConfig(overlay_p=1.0, overlay_drift=2.0, color_p=0.0, jpeg_p=0.0,
                                 resize_p=0.0, blur_p=0.0, noise_p=0.0, cutout_p=0.0)
    changed = 0
    for seed in range(8):
        real, fake = augment_window(frames, [f.copy() for f in frames],
                                    np.random.default_rng(seed), only_overlay)
        for r, f in zip(real, fake):
            np.testing.assert_array_equal(r, f)
        marked = [np.abs(r.astype(int) - f0.astype(int)).sum(-1) > 12
                  for r, f0 in zip(real, frames)]
        assert any(m.any() for m in marked), f"seed {seed}: no mark drawn"
        # The mark is static in the frame, so it moves in the face-aligned crop.
        changed += any(not np.array_equal(marked[0], m) for m in marked[1:])
    assert changed >= 4


def test_overlay_is_off_by_default_and_reproducible():
    from engines.train.overlays import random_overlay

    assert AugmentConfig().overlay_p == 0.0
    a = random_overlay(np.random.default_rng(3), 64, T)
    b = random_overlay(np.random.default_rng(3), 64, T)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    np.testing.assert_array_equal(a.drift, b.drift)
    assert 0.0 <= a.alpha.min() and a.alpha.max() <= 1.0 and a.alpha.max() > 0.3
    np.testing.assert_array_equal(a.drift[0], [0.0, 0.0])


def test_window_maker_returns_a_pair_of_windows():
    crops, mesh = _window(moving=True)
    maker = WindowMaker(LOOSE, TARGET, SBIConfig(), AugmentConfig(), WindowFakeConfig())
    real, fake, masks, info = maker(crops, mesh, np.random.default_rng(0))
    assert real.shape == fake.shape == (T, TARGET.size, TARGET.size, 3)
    assert masks.shape == (T, TARGET.size, TARGET.size)
    assert info["variant"] in WindowFakeConfig().variants
    assert not np.array_equal(real, fake)


def test_window_starts_respect_segments_and_gaps():
    analysed = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
    segment = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert window_starts(analysed, segment, 3).tolist() == [0, 1, 2, 5, 8]
    assert window_starts(analysed, segment, 6).tolist() == []
    assert spread_windows(np.arange(20), 4, 3).tolist() == [0, 8, 16]
    assert spread_windows(np.arange(20), 4, 10).tolist() == [0, 4, 8, 12, 16]


def test_smooth_mesh_averages_over_time_and_keeps_gaps():
    mesh = np.zeros((5, 468, 2), np.float32)
    mesh[2] += 10
    mesh[4] = np.nan
    out = smooth_mesh(mesh, np.arange(5), np.zeros(5), 1.0)
    assert 0 < out[2, 0, 0] < 10 and out[1, 0, 0] > 0
    assert np.isnan(out[4]).all()
    np.testing.assert_array_equal(smooth_mesh(mesh, np.arange(5), np.zeros(5), 0.0)[2], mesh[2])


def test_window_bank_from_cache_files(tmp_path):
    crops, mesh = _window(moving=True)
    n = 10
    data = dict(
        crops=np.concatenate([crops, crops[:4]]), mesh=np.concatenate([mesh, mesh[:4]]),
        keypoints=np.zeros((n, 4, 2), np.float32), analysed=np.arange(n, dtype=np.int32),
        frame=np.arange(n, dtype=np.int32) * 3, time=np.arange(n, dtype=np.float32) / 10,
        segment=np.zeros(n, np.int16), detected=np.ones(n, bool),
        interocular=np.full(n, 30, np.float32), label=np.array("real"), method=np.array(""),
        group=np.array("g"), rel=np.array("a.mp4"), kind=np.array("video"),
    )
    data["mesh"][7] = np.nan
    np.savez(tmp_path / "a.npz", **data)
    bank = WindowBank.load([tmp_path / "a.npz"], 4, store=tmp_path / "bank", require_mesh=True)
    assert bank.starts.tolist() == [0, 1, 2, 3]  # windows over frame 7 are dropped
    w_crops, w_mesh = bank.window(3)
    assert w_crops.shape == (4, LOOSE.size, LOOSE.size, 3)
    np.testing.assert_array_equal(w_crops, data["crops"][3:7])
    import pickle

    clone = pickle.loads(pickle.dumps(bank))  # data-loader workers get the memmap path only
    np.testing.assert_array_equal(clone.window(2)[0], bank.window(2)[0])
    spread = WindowBank.load([tmp_path / "a.npz"], 4, per_file=2)
    assert len(spread) == 2


def test_clip_extractor_on_the_demo_clip(real_clip):
    """The agent's tracker over a synthetic moving-face clip: one track, aligned crops."""
    pytest.importorskip("mediapipe")
    from engines.data.clips import ClipExtractor, analysed_frames

    spec = ClipSpec(max_frames=10, loose_size=96)
    frames = list(analysed_frames(real_clip.path, 10.0, 10))
    assert len(frames) == 10
    step = np.diff([f[0] for f in frames])
    assert set(step.tolist()) <= {2, 3}  # 25 fps -> every 2.5 frames on the time grid
    extractor = ClipExtractor(spec)
    tracks, n = extractor.track(iter(frames))
    pieces = extractor.choose_face(tracks)
    assert n == 10 and len(pieces) == 1 and len(pieces[0]) >= 8
    crop = pieces[0][0]["crop"]
    assert crop.shape == (96, 96, 3)
    mesh = extractor._mesh_for(crop)
    assert np.isfinite(mesh).all()


@pytest.mark.skipif(not os.environ.get("VERITY_DATA_DIR"), reason="needs VERITY_DATA_DIR (face media)")
def test_clip_extraction_on_a_real_video_from_the_data_folder():
    pytest.importorskip("mediapipe")
    from engines.data.clips import ClipExtractor
    from engines.manifest import read_manifest

    entries = [e for e in read_manifest() if e.kind == "video" and not e.is_fake]
    assert entries
    spec = ClipSpec(max_frames=12)
    extractor = ClipExtractor(spec)
    for entry in sorted(entries, key=lambda e: e.path.stat().st_size)[:5]:
        data = extractor.extract(entry)  # the smallest files first; a few are too short
        n = len(data["crops"])
        if n:
            break
    assert n >= spec.min_track_frames
    assert data["crops"].shape[1:] == (spec.loose_size, spec.loose_size, 3)
    assert data["mesh"].shape == (n, 468, 2) and data["analysed"].shape == (n,)
    assert n <= 12 and (np.diff(data["analysed"]) >= 1).all()


def test_a_wrong_overlay_setting_is_named():
    with pytest.raises(ValueError, match="augment.overlay_p"):
        AugmentConfig.from_dict({"overlay_p": 1.5})
    with pytest.raises(ValueError, match="augment.overlay_drift"):
        AugmentConfig.from_dict({"overlay_drift": -1})


def _only(**kwargs) -> AugmentConfig:
    off = dict(color_p=0.0, jpeg_p=0.0, resize_p=0.0, blur_p=0.0, noise_p=0.0, cutout_p=0.0)
    return AugmentConfig(**{**off, **kwargs})


def test_h264_augmentation_codes_both_windows_alike_as_one_clip():
    crops, _ = _window(moving=True)
    frames = list(centre_window(crops, LOOSE, TARGET))
    cfg = _only(video_p=1.0, video_crf=(36, 36), video_scale=(1.5, 1.5))
    real, fake = augment_window(frames, [f.copy() for f in frames], np.random.default_rng(0), cfg)
    assert len(real) == len(frames) and real[0].shape == frames[0].shape
    for r, f in zip(real, fake):  # the same CRF and scale for the pair
        np.testing.assert_array_equal(r, f)
    assert np.mean([np.abs(r.astype(int) - f.astype(int)).mean()
                    for r, f in zip(real, frames)]) > 0.5  # it was coded


def test_h264_augmentation_draws_nothing_when_off():
    """Recipes written before it (the shipped ones) keep their random sequence."""
    from engines.train.augment import shared_compression

    frames = [np.full((16, 16, 3), 100, np.uint8)]
    rng = np.random.default_rng(5)
    out = shared_compression([frames], rng, AugmentConfig(jpeg_p=0.0))
    assert out[0][0] is frames[0]
    reference = np.random.default_rng(5)
    reference.random()  # the JPEG draw, which recipes always made
    assert rng.random() == reference.random()


def test_a_wrong_h264_setting_is_named():
    for bad, key in (({"video_p": 1.5}, "augment.video_p"),
                     ({"video_crf": [40, 20]}, "augment.video_crf"),
                     ({"video_crf": [20, 60]}, "augment.video_crf"),
                     ({"video_scale": [0, 1]}, "augment.video_scale")):
        with pytest.raises(ValueError, match=key):
            AugmentConfig.from_dict(bad)
