"""Perturbations: each moves the picture the way its name says, more at higher levels,
and the same seed gives the same result."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from agent.demo.clip import astronaut_bgr
from engines import perturbations as P
from tests.support.media import write_test_clip

README = Path(__file__).resolve().parents[2] / "agent" / "evaluation" / "README.md"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return astronaut_bgr(320, 240)


def levels(photo, name, **kw):
    return [P.apply(photo, name, level, **kw) for level in P.LEVELS]


def strictly_decreasing(values) -> bool:
    return all(a > b for a, b in zip(values, values[1:]))


def strictly_increasing(values) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))


def laplacian_variance(image) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())


def mean_abs_diff(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_registry_has_five_levels_and_the_deeperforensics_types():
    assert set(P.DEEPERFORENSICS) <= set(P.TYPES)
    for name in ("resolution", "overlay_text", "border", "pip", "fps"):
        assert name in P.TYPES
    for t in P.TYPES.values():
        assert len(t.values) == len(P.LEVELS) and t.scope in ("frame", "file") and t.description


def test_readme_shows_the_registry_as_it_is():
    assert P.describe_types() in README.read_text(), "paste: verity eval --list-perturbations"


def test_blur_lowers_sharpness_with_each_level(photo):
    sharpness = [laplacian_variance(photo)] + [laplacian_variance(x) for x in levels(photo, "blur")]
    assert strictly_decreasing(sharpness)


def test_jpeg_departs_further_from_the_original_at_each_level(photo):
    errors = [mean_abs_diff(x, photo) for x in levels(photo, "jpeg")]
    assert strictly_increasing(errors) and errors[-1] > 2 * errors[0]


def test_saturation_drains_colour_down_to_grey(photo):
    pictures = [photo] + levels(photo, "saturation")
    sat = [float(cv2.cvtColor(x, cv2.COLOR_BGR2HSV)[..., 1].mean()) for x in pictures]
    assert strictly_decreasing(sat)
    grey = P.apply(photo, "saturation", 5).astype(np.int16)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # level 5: no colour left


def test_contrast_narrows_the_grey_levels_around_the_mean(photo):
    gray = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in [photo] + levels(photo, "contrast")]
    assert strictly_decreasing([g.std() for g in gray])
    assert abs(gray[-1].mean() - gray[0].mean()) < 2.0  # brightness kept


def test_noise_strength_follows_the_variance(photo):
    spread = [float((x.astype(np.float32) - photo).std()) for x in levels(photo, "noise", seed=3)]
    assert strictly_increasing(spread)
    assert spread[0] == pytest.approx(np.sqrt(0.001) * 255, rel=0.15)


def test_block_distortion_covers_more_of_the_frame_at_each_level(photo):
    changed = [float((x != photo).any(axis=2).mean()) for x in levels(photo, "block", seed=1)]
    assert strictly_increasing(changed)


def test_resolution_keeps_the_frame_small(photo):
    h, w = photo.shape[:2]
    for level, factor in zip(P.LEVELS, P.TYPES["resolution"].values):
        out = P.apply(photo, "resolution", level)
        assert out.shape == (round(h / factor), round(w / factor), 3)


@pytest.mark.parametrize("name", ["overlay_text", "border", "pip", "saturation", "video"])
def test_frame_size_is_kept(photo, name):
    for out in levels(photo, name):
        assert out.shape == photo.shape and out.dtype == np.uint8


def test_overlays_cover_more_at_higher_levels(photo):
    for name in ("overlay_text", "border"):
        changed = [
            float((np.abs(x.astype(int) - photo) > 10).any(axis=2).mean())
            for x in levels(photo, name)
        ]
        assert strictly_increasing(changed), name


def test_border_bars_are_black_and_grow(photo):
    h = photo.shape[0]
    for level, share in zip(P.LEVELS, P.TYPES["border"].values):
        out = P.apply(photo, "border", level)
        bar = int(share * h) - 1
        assert out[:bar].max() == 0 and out[-bar:].max() == 0


def test_pip_puts_the_whole_frame_small_in_the_bottom_right(photo):
    out = P.apply(photo, "pip", 3)
    h, w = photo.shape[:2]
    inset_w = round(w * 0.3)
    inset_h = round(h * inset_w / w)
    margin = max(2, round(0.02 * w))
    inset = out[h - margin - inset_h : h - margin, w - margin - inset_w : w - margin]
    expected = cv2.resize(photo, (inset_w, inset_h), interpolation=cv2.INTER_AREA)
    assert mean_abs_diff(inset, expected) < 1.0
    assert out[: h // 3, : w // 3].mean() > 150  # the rest is the (light) shared slide


def test_video_type_on_a_still_is_an_h264_round_trip(photo):
    errors = [mean_abs_diff(x, photo) for x in levels(photo, "video")]
    assert strictly_increasing(errors)
    odd = P.apply(photo[:239, :319], "video", 1)
    assert odd.shape == (238, 318, 3)  # 4:2:0 needs even sides


def test_same_seed_same_result_other_seed_other_result(photo):
    for name in ("noise", "block"):
        a, b = P.apply(photo, name, 3, seed=5), P.apply(photo, name, 3, seed=5)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, P.apply(photo, name, 3, seed=6))


def test_frame_transform_varies_per_frame_and_repeats_per_run(photo):
    first, second = P.frame_transform("noise", 2, seed=1), P.frame_transform("noise", 2, seed=1)
    run1 = [first(photo) for _ in range(3)]
    run2 = [second(photo) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(run1, run2))
    assert not np.array_equal(run1[0], run1[1])


def test_bad_types_and_levels_are_named():
    with pytest.raises(ValueError, match="unknown perturbation type 'sepia'.*blur"):
        P.parse_spec("sepia:2")
    with pytest.raises(ValueError, match="blur: level 9 is not one of 1, 2, 3, 4, 5"):
        P.parse_spec("blur:9")
    with pytest.raises(ValueError, match="TYPE:LEVEL"):
        P.parse_spec("blur")
    with pytest.raises(ValueError, match="level 0"):
        P.apply(np.zeros((8, 8, 3), np.uint8), "blur", 0)
    assert P.parse_spec(" jpeg:5 ") == ("jpeg", 5)


def test_fps_is_a_file_perturbation_and_leaves_stills_alone(photo):
    with pytest.raises(ValueError, match="file perturbation"):
        P.apply(photo, "fps", 2)
    with pytest.raises(ValueError, match="file perturbation"):
        P.frame_transform("video", 2)
    assert P.apply_to_still(photo, "fps", 5) is photo


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s at 25 fps, 320x240: 50 frames with pts i/25."""
    return write_test_clip(tmp_path_factory.mktemp("pert") / "clip.mp4", seconds=2.0, fps=25.0)


def decoded(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return [f.time for f in frames], [f.to_ndarray(format="bgr24") for f in frames]


@pytest.mark.parametrize("level, fps, count", [(3, 10, 20), (4, 5, 10), (5, 2, 4)])
def test_fps_reencode_drops_frames_and_keeps_time(clip, tmp_path, level, fps, count):
    out = P.reencode(clip, tmp_path / "low.mp4", "fps", level)
    times, _ = decoded(out)
    assert len(times) == count
    assert times == pytest.approx([i / fps for i in range(count)], abs=1e-3)
    assert 2.0 - 1 / fps - 1e-3 <= times[-1] < 2.0  # the same two seconds, at the new rate


def test_fps_reencode_honours_max_seconds(clip, tmp_path):
    times, _ = decoded(P.reencode(clip, tmp_path / "cut.mp4", "fps", 3, max_seconds=1.0))
    assert len(times) == 10 and times[-1] < 1.0


def test_video_reencode_is_decodable_and_coarser_at_higher_crf(clip, tmp_path):
    _, original = decoded(clip)
    sizes, errors = [], []
    for level in (1, 5):
        out = P.reencode(clip, tmp_path / f"crf{level}.mp4", "video", level)
        times, frames = decoded(out)
        assert len(frames) == len(original) and frames[0].shape == original[0].shape
        assert times == pytest.approx([i / 25 for i in range(50)], abs=1e-3)
        sizes.append(out.stat().st_size)
        errors.append(np.mean([mean_abs_diff(a, b) for a, b in zip(frames, original)]))
    assert sizes[1] < sizes[0] and errors[1] > errors[0]


def test_reencode_refuses_frame_types(clip, tmp_path):
    with pytest.raises(ValueError, match="frame perturbation"):
        P.reencode(clip, tmp_path / "x.mp4", "blur", 1)


def test_h264_clip_keeps_every_frame_and_smooths_small_flicker(photo):
    """A clip is coded as intra + predicted frames: a faint frame-to-frame flicker (the kind a
    blend boundary makes) is mostly not coded at a streaming CRF, which training must see."""
    rng = np.random.default_rng(0)
    base = photo[:96, :128].astype(np.int16)
    frames = [np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
              for _ in range(8)]
    coded = P.h264_clip_roundtrip(frames, 35)
    assert len(coded) == 8 and coded[0].shape == frames[0].shape

    def flicker(seq):
        return np.mean([mean_abs_diff(a, b) for a, b in itertools.pairwise(seq)])

    assert flicker(coded) < 0.5 * flicker(frames)
    fine = P.h264_clip_roundtrip(frames, 18)
    assert mean_abs_diff(fine[3], frames[3]) < mean_abs_diff(coded[3], frames[3])
