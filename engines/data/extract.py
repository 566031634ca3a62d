"""Fill a per-file .npz cache of the face media in parallel (the face crops and the face windows).

Each manifest entry becomes one compressed .npz written atomically (a temporary name, then a
rename), so an interrupted run leaves no half file and a rerun extracts only what is missing.
A broken media file is logged and skipped: it must not stop the rest.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from engines.manifest import ManifestEntry

log = logging.getLogger("verity.data")


class Extractor(Protocol):
    def extract(self, entry: ManifestEntry) -> dict[str, np.ndarray]: ...


_WORKER: Extractor | None = None


def _init_worker(extractor_type: type, spec: Any) -> None:
    global _WORKER
    os.environ.setdefault("GLOG_minloglevel", "2")
    cv2.setNumThreads(1)
    _WORKER = extractor_type(spec)


def _work(job: tuple[ManifestEntry, str]) -> tuple[str, int, float, str]:
    entry, out = job
    start = time.time()
    try:
        data = _WORKER.extract(entry)
    except Exception as exc:  # a broken file must not stop the whole cache
        return entry.rel, -1, time.time() - start, f"{type(exc).__name__}: {exc}"
    tmp = out + ".tmp.npz"
    np.savez_compressed(tmp, **data)
    os.replace(tmp, out)
    return entry.rel, len(data["crops"]), time.time() - start, ""


def fill_cache(jobs: list[tuple[ManifestEntry, Path]], folder: Path, extractor_type: type,
               spec: Any, *, what: str, workers: int = 1, progress: bool = True) -> None:
    """Extract every (entry, npz path) job whose file is missing, with `workers` spawned
    processes each holding one `extractor_type(spec)`; per-file timing goes to
    folder/extract_log.jsonl and the spec to folder/spec.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
    todo = [(entry, str(path)) for entry, path in jobs if not Path(path).is_file()]
    if not todo:
        return
    log.info("%s cache: extracting %d of %d files into %s", what, len(todo), len(jobs), folder)
    from tqdm import tqdm

    bar = tqdm(total=len(todo), disable=not progress, desc=what, mininterval=10)
    errors, timing = [], []

    def record(results) -> None:
        for rel, n, seconds, err in results:
            if err:
                errors.append((rel, err))
            timing.append((rel, n, round(seconds, 2)))
            bar.update(1)

    if workers <= 1:
        _init_worker(extractor_type, spec)
        record(map(_work, todo))
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, _init_worker, (extractor_type, spec)) as pool:
            record(pool.imap_unordered(_work, todo))
    bar.close()
    for rel, err in errors:
        log.warning("%s cache: %s failed: %s", what, rel, err)
    with open(folder / "extract_log.jsonl", "a") as handle:
        for rel, n, seconds in timing:
            handle.write(json.dumps({"rel": rel, "faces": n, "seconds": seconds}) + "\n")


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
