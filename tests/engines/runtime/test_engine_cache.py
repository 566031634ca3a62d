"""Engine cache: keys, paths, atomic writes, the build lock across processes, and the
"try deserialize, else rebuild" decision (no TensorRT needed)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from engines.runtime.engine_cache import (
    EngineBuildError,
    atomic_write_bytes,
    build_lock,
    engine_cache_key,
    engine_cache_path,
    load_or_build,
    try_load,
)

BASE = dict(
    onnx_sha256="a" * 64,
    trt_version="10.3.0.26",
    device_name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    max_batch=32,
    precision="fp16",
)


def test_key_is_stable():
    assert engine_cache_key(**BASE) == engine_cache_key(**BASE)
    assert len(engine_cache_key(**BASE)) == 32


@pytest.mark.parametrize(
    "field, value",
    [
        ("onnx_sha256", "b" * 64),
        ("trt_version", "10.3.0.27"),
        ("device_name", "NVIDIA H200"),
        ("compute_capability", "8.9"),
        ("max_batch", 16),
        ("precision", "fp32"),
    ],
)
def test_key_changes_with_each_input(field, value):
    assert engine_cache_key(**{**BASE, field: value}) != engine_cache_key(**BASE)


def test_key_normalises_equivalent_spellings():
    assert engine_cache_key(**{**BASE, "compute_capability": (9, 0)}) == engine_cache_key(**BASE)
    assert engine_cache_key(
        **{**BASE, "device_name": " NVIDIA  H100 80GB HBM3 "}
    ) == engine_cache_key(**BASE)
    assert engine_cache_key(**{**BASE, "onnx_sha256": "A" * 64}) == engine_cache_key(**BASE)


@pytest.mark.parametrize(
    "field, value",
    [("precision", "int8"), ("max_batch", 0), ("compute_capability", "sm90"), ("trt_version", "")],
)
def test_key_rejects_bad_inputs(field, value):
    with pytest.raises(ValueError):
        engine_cache_key(**{**BASE, field: value})


def test_path_is_readable_and_keyed(tiny_pack, tmp_path):
    kwargs = {k: v for k, v in BASE.items() if k != "onnx_sha256"}
    path = engine_cache_path(tmp_path, tiny_pack, **kwargs)
    assert path.parent == tmp_path
    assert path.name.startswith("tiny-1.0.0_fp16_b32_sm90_") and path.suffix == ".engine"
    # Defaults to hashing the ONNX bytes: editing the model gives another file.
    with open(tiny_pack.onnx_path, "ab") as handle:
        handle.write(b"\0")
    assert engine_cache_path(tmp_path, tiny_pack, **kwargs) != path
    assert engine_cache_path("~/x", tiny_pack, **kwargs).parts[0] != "~"


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "model.engine"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.engine"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model.engine"
    atomic_write_bytes(target, b"good")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"half a new engine")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


def _deserialize(data: bytes):
    if not data.startswith(b"ENGINE:"):
        raise RuntimeError("Serialization assertion failed: version tag does not match")
    return data[len(b"ENGINE:") :].decode()


def test_try_load_distinguishes_missing_good_and_bad(tmp_path):
    path = tmp_path / "e.engine"
    assert try_load(path, _deserialize) == (None, None)
    path.write_bytes(b"")
    assert try_load(path, _deserialize) == (None, "the file is empty")
    path.write_bytes(b"junk")
    obj, reason = try_load(path, _deserialize)
    assert obj is None and "version tag does not match" in reason
    path.write_bytes(b"ENGINE:ok")
    assert try_load(path, _deserialize) == ("ok", None)
    assert try_load(path, lambda data: None) == (None, "it does not deserialize")


def test_load_or_build_builds_then_uses_cache(tmp_path):
    path = tmp_path / "e.engine"
    builds = []

    def build():
        builds.append(1)
        return b"ENGINE:v1"

    assert load_or_build(path, deserialize=_deserialize, build=build) == ("v1", "built")
    assert load_or_build(path, deserialize=_deserialize, build=build) == ("v1", "cached")
    assert len(builds) == 1
    assert load_or_build(path, deserialize=_deserialize, build=build, force=True) == (
        "v1",
        "rebuilt",
    )
    assert len(builds) == 2


def test_corrupt_cached_file_is_rebuilt_with_a_warning(tmp_path, caplog):
    path = tmp_path / "e.engine"
    path.write_bytes(b"half an engi")
    with caplog.at_level(logging.WARNING):
        obj, outcome = load_or_build(path, deserialize=_deserialize, build=lambda: b"ENGINE:new")
    assert (obj, outcome) == ("new", "rebuilt")
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1
    assert "unusable" in warning[0].getMessage()
    assert "version tag does not match" in warning[0].getMessage()
    assert path.read_bytes() == b"ENGINE:new"


def test_build_that_does_not_load_back_is_an_error(tmp_path):
    with pytest.raises(EngineBuildError, match="does not load back"):
        load_or_build(tmp_path / "e.engine", deserialize=_deserialize, build=lambda: b"bad")


def test_build_failure_leaves_no_file(tmp_path):
    def build():
        raise EngineBuildError("parser said no")

    with pytest.raises(EngineBuildError, match="parser said no"):
        load_or_build(tmp_path / "e.engine", deserialize=_deserialize, build=build)
    assert not (tmp_path / "e.engine").exists()


def test_lock_times_out_while_another_holder_has_it(tmp_path):
    target = tmp_path / "e.engine"
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold_lock, args=(str(target), ready, release)
    )
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(TimeoutError, match="still building"):
            with build_lock(target, timeout_s=0.3, poll_s=0.05):
                pass
    finally:
        release.set()
        holder.join(10)
    with build_lock(target, timeout_s=1):  # free again once the holder is gone
        pass


def _hold_lock(target, ready, release):
    with build_lock(Path(target)):
        ready.set()
        release.wait(10)


def _build_in_process(path: str, counter: str, started) -> None:
    def build():
        with open(counter, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the other process to find the lock taken
        return b"ENGINE:shared"

    started.wait(10)
    obj, outcome = load_or_build(Path(path), deserialize=_deserialize, build=build)
    assert obj == "shared"


def test_two_processes_build_once(tmp_path):
    path, counter = tmp_path / "e.engine", tmp_path / "builds.txt"
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    procs = [
        ctx.Process(target=_build_in_process, args=(str(path), str(counter), started))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    started.set()
    for proc in procs:
        proc.join(30)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert len(counter.read_text().split()) == 1  # one build, the other process loaded it
    assert path.read_bytes() == b"ENGINE:shared"
