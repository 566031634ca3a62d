"""TensorRTEngine and build_engine end to end against the fakes in fakes.py.

This checks Verity's orchestration (cache, lock, metadata, profile, ONNX preparation,
batch splitting, pointer plumbing, error messages) on a CPU. TensorRT's own behaviour is
only checked on a GPU machine.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from engines.runtime import tensorrt as trt_runtime
from engines.runtime.engine_cache import EngineBuildError
from engines.runtime.onnxruntime import OnnxRuntimeEngine
from tests.engines.runtime import fakes
from tests.engines.runtime.tiny_models import random_crops, tiny_model, write_pack


def test_build_engine_writes_engine_and_metadata_then_reuses_it(fake_gpu, tiny_pack, tmp_path):
    trt, _ = fake_gpu
    cache = tmp_path / "cache"
    path = trt_runtime.build_engine(tiny_pack, cache, max_batch=8)
    assert path.is_file() and path.parent == cache
    assert path.name.startswith("tiny-1.0.0_fp16_b8_sm89_")
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["model"] == "tiny@1.0.0" and meta["device"] == "NVIDIA Fake GPU"
    assert meta["precision_used"] == "fp16" and meta["tensorrt"] == trt.__version__
    assert meta["profile"] == {"min": [1, 16, 16, 3], "opt": [8, 16, 16, 3], "max": [8, 16, 16, 3]}
    assert fakes.Builder.builds == 1
    assert trt_runtime.build_engine(tiny_pack, cache, max_batch=8) == path
    assert fakes.Builder.builds == 1  # cached
    assert trt_runtime.build_engine(tiny_pack, cache, max_batch=8, force=True) == path
    assert fakes.Builder.builds == 2
    assert not list(cache.glob("*.tmp"))


def test_engine_matches_onnxruntime_and_splits_large_batches(fake_gpu, tiny_pack, tmp_path):
    engine = trt_runtime.TensorRTEngine(tiny_pack, max_batch=32, cache_dir=tmp_path / "c")
    crops = random_crops(70)
    expected = OnnxRuntimeEngine(tiny_pack).infer(crops)
    logits = engine.infer(crops)
    assert logits.dtype == np.float32 and logits.shape == (70,)
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)
    assert engine._context.input_shapes == [(32, 16, 16, 3), (32, 16, 16, 3), (6, 16, 16, 3)]
    assert engine.infer(crops[:0]).shape == (0,)
    assert engine.load_outcome == "built"
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.infer(crops[:1])


def test_engine_rejects_wrong_crop_shape(fake_gpu, tiny_pack, tmp_path):
    engine = trt_runtime.TensorRTEngine(tiny_pack, max_batch=4, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"expected uint8 crops of shape \(N, 16, 16, 3\)"):
        engine.infer(np.zeros((2, 8, 8, 3), np.uint8))
    engine.close()


def test_temporal_pack(fake_gpu, tmp_path):
    pack = write_pack(tmp_path / "t", name="temporal", frames=4)
    crops = random_crops(5, frames=4)
    with trt_runtime.TensorRTEngine(pack, max_batch=2, cache_dir=tmp_path / "c") as engine:
        assert engine.sample_shape == (4, 16, 16, 3)
        np.testing.assert_allclose(
            engine.infer(crops), OnnxRuntimeEngine(pack).infer(crops), rtol=1e-6, atol=1e-6
        )


def test_corrupt_cached_engine_is_rebuilt_with_a_warning(fake_gpu, tiny_pack, tmp_path, caplog):
    cache = tmp_path / "cache"
    path = trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    path.write_bytes(b"\x00garbage, half an engine")
    with caplog.at_level(logging.WARNING):
        engine = trt_runtime.TensorRTEngine(tiny_pack, max_batch=4, cache_dir=cache)
    assert engine.load_outcome == "rebuilt"
    assert any("is unusable" in r.message and "rebuilding" in r.message for r in caplog.records)
    assert engine.infer(random_crops(2)).shape == (2,)
    engine.close()


def test_engine_from_another_tensorrt_version_is_rebuilt(fake_gpu, tiny_pack, tmp_path, caplog):
    """The "version tag does not match" case: a plan from another TensorRT lands at the
    path (e.g. a cache folder copied between machines with a stale name scheme)."""
    trt, _ = fake_gpu
    cache = tmp_path / "cache"
    path = trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    stale = path.read_bytes().replace(trt.__version__.encode(), b"8.6.1.6", 1)
    path.write_bytes(stale)
    with caplog.at_level(logging.WARNING):
        trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "version tag does not match" in messages and "rebuilding" in messages


def test_new_tensorrt_version_or_gpu_gets_its_own_engine(fake_gpu, tiny_pack, tmp_path):
    trt, cudart = fake_gpu
    cache = tmp_path / "cache"
    first = trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    trt.__version__ = "10.4.0.1"
    second = trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    cudart.gpu_name, cudart.cc = "Orin", (8, 7)
    third = trt_runtime.build_engine(tiny_pack, cache, max_batch=4)
    assert len({first, second, third}) == 3
    assert "_sm87_" in third.name
    assert fakes.Builder.builds == 3


def test_transpose_first_export_is_prepared_for_the_parser(fake_gpu, tmp_path, caplog):
    """The fake parser, like TensorRT, rejects uint8 -> Transpose; onnx_prep fixes it."""
    pack = write_pack(tmp_path / "p", transpose_first=True)
    with caplog.at_level(logging.INFO):
        engine = trt_runtime.TensorRTEngine(pack, max_batch=4, cache_dir=tmp_path / "c")
    assert any("now feeds a Cast to float first" in r.getMessage() for r in caplog.records)
    crops = random_crops(3)
    np.testing.assert_allclose(engine.infer(crops), OnnxRuntimeEngine(pack).infer(crops), atol=1e-6)
    engine.close()


def test_parser_errors_are_all_reported(fake_gpu, tmp_path):
    pack = write_pack(tmp_path / "p", model=tiny_model(extra_op="Erf"))
    with pytest.raises(EngineBuildError) as info:
        trt_runtime.build_engine(pack, tmp_path / "c", max_batch=4)
    message = str(info.value)
    assert "TensorRT could not parse" in message and "(1 error(s))" in message
    assert "No importer registered for op: Erf" in message and "op Erf" in message
    assert not list((tmp_path / "c").glob("*.engine"))


def test_fixed_batch_export_is_refused_with_a_clear_message(fake_gpu, tmp_path):
    pack = write_pack(tmp_path / "p", model=tiny_model(fixed_batch=1))
    with pytest.raises(EngineBuildError, match="batch axis is fixed at 1"):
        trt_runtime.build_engine(pack, tmp_path / "c", max_batch=4)


def test_fp32_fallback_when_the_gpu_has_no_fast_fp16(fake_gpu, tiny_pack, tmp_path, caplog):
    fakes.Builder.fast_fp16 = False
    with caplog.at_level(logging.WARNING):
        path = trt_runtime.build_engine(tiny_pack, tmp_path, max_batch=4)
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["precision_requested"] == "fp16" and meta["precision_used"] == "fp32"
    assert any("no fast FP16" in r.getMessage() for r in caplog.records)


def test_device_and_pinned_memory_are_freed_on_close(fake_gpu, tiny_pack, tmp_path):
    _, cudart = fake_gpu
    engine = trt_runtime.TensorRTEngine(tiny_pack, max_batch=4, cache_dir=tmp_path)
    engine.infer(random_crops(4))
    kinds = {kind for kind, _ in cudart.copies}
    assert kinds == {"cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost"}
    assert ("cudaMemcpyHostToDevice", 4 * 16 * 16 * 3) in cudart.copies
    engine.close()
    assert len(cudart.freed) == 4
    engine.close()  # idempotent
    assert len(cudart.freed) == 4


def test_build_engine_without_gpu_raises_unavailable(fake_gpu, tiny_pack, tmp_path):
    _, cudart = fake_gpu
    cudart.count_error = fakes.cudaError_t.cudaErrorNoDevice
    from engines.runtime import EngineUnavailable

    with pytest.raises(EngineUnavailable, match="no CUDA-capable device is detected"):
        trt_runtime.build_engine(tiny_pack, tmp_path, max_batch=4)
