"""The FP16 precision check, run on the CPU with ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from engines.registry import Calibration
from engines.runtime.onnxruntime import OnnxRuntimeEngine
from engines.runtime.precision import (
    Fp16Report,
    check_engine_agreement,
    check_fp16,
    compare_outputs,
    probabilities,
)
from tests.engines.runtime.tiny_models import random_crops, write_pack

pytest.importorskip("onnxconverter_common", reason="the FP16 check needs onnxconverter-common")


def test_fp16_check_on_a_tiny_model_gives_a_small_difference(tiny_pack):
    report = check_fp16(tiny_pack, random_crops(64), threshold=0.5)
    assert isinstance(report, Fp16Report)
    assert report.samples == 64 and report.model == "tiny@1.0.0"
    assert 0 < report.max_abs_logit_diff < 0.02  # FP16 rounding: not zero, and small
    assert report.max_abs_prob_diff < 0.005
    assert report.mean_abs_logit_diff <= report.max_abs_logit_diff
    assert report.nonfinite == 0
    text = report.summary()
    assert "max |logit diff|" in text and "decisions flipped at threshold 0.5" in text


def test_fp16_check_temporal_pack_and_card_threshold(tmp_path):
    pack = write_pack(tmp_path / "t", name="temporal", frames=4, threshold=0.7)
    report = check_fp16(pack, random_crops(16, frames=4))
    assert report.threshold == 0.7 and report.samples == 16
    assert report.max_abs_logit_diff < 0.02


def test_fp16_check_reports_a_flip_next_to_the_threshold(tiny_pack):
    """A threshold between a crop's FP32 and FP16 probabilities flips its decision."""
    crop = random_crops(1, seed=5)
    p32 = float(
        probabilities(OnnxRuntimeEngine(tiny_pack).infer(crop), tiny_pack.card.calibration)[0]
    )
    moved = check_fp16(tiny_pack, crop, threshold=0.5).max_abs_prob_diff
    if moved == 0:
        pytest.skip("FP16 rounding did not move this crop")
    # FP16 moved the probability up or down by `moved`: exactly one of these sits between.
    reports = [check_fp16(tiny_pack, crop, threshold=p32 + sign * moved / 2) for sign in (1, -1)]
    assert sorted(r.flips for r in reports) == [0, 1]
    flipped = next(r for r in reports if r.flips)
    assert flipped.flipped == (0,) and not flipped.ok
    assert "WARNING: decisions change" in flipped.summary()


def test_compare_outputs_counts_flips_and_nonfinite():
    calib = Calibration()
    ref = np.array([-2.0, -0.01, 0.01, 3.0, 1.0], np.float32)
    cand = np.array([-2.0, 0.01, 0.01, 3.0, np.inf], np.float32)
    report = compare_outputs(ref, cand, calibration=calib, threshold=0.5, model="m")
    assert report.flips == 1 and report.flipped == (1,)
    assert report.nonfinite == 1 and not report.ok
    assert report.max_abs_logit_diff == pytest.approx(0.02, abs=1e-6)
    assert report.closest_to_threshold == pytest.approx(
        abs(probabilities(np.array([0.01]), calib)[0] - 0.5)
    )


def test_compare_outputs_uses_the_card_calibration():
    ref, cand = np.array([1.0]), np.array([1.2])
    sharp = compare_outputs(ref, cand, calibration=Calibration(temperature=0.5), threshold=0.9)
    flat = compare_outputs(ref, cand, calibration=Calibration(temperature=4.0), threshold=0.9)
    assert sharp.max_abs_prob_diff > flat.max_abs_prob_diff
    with pytest.raises(ValueError):
        compare_outputs(ref, np.array([1.0, 2.0]), calibration=Calibration(), threshold=0.5)
    with pytest.raises(ValueError):
        compare_outputs(ref, cand, calibration=Calibration(), threshold=1.5)


def test_engine_agreement_with_the_same_runtime_is_exact(tiny_pack):
    report = check_engine_agreement(tiny_pack, random_crops(40), OnnxRuntimeEngine(tiny_pack))
    assert report.max_abs_logit_diff < 1e-6 and report.ok
    assert report.candidate == "onnxruntime engine"


def test_bad_crops_are_refused(tiny_pack):
    with pytest.raises(ValueError, match="uint8"):
        check_fp16(tiny_pack, random_crops(4).astype(np.float32))
    with pytest.raises(ValueError, match=r"takes crops of shape"):
        check_fp16(tiny_pack, random_crops(4, size=8))
