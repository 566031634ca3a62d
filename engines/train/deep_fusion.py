"""The deep model's joint decision with the always-on spatial model, fitted by the deep trainer.

The spatial model (self-blends only, never a real fake) and the deep head (real fakes of many
generators on CLIP) err on different files: on the deep trainer's leave-one-family-out files,
a weighted sum of the two, each in units of its logits' spread on real faces, scored every
family higher than the deep head alone (README, Models). This module gives the trainer the
spatial model's logits on the deep model's own cached crops and the fused logits.

The spatial crop is cut from the deep model's cached crop (engines.faces.align.recrop, as the
agent does for stills): the cached crop spans more face units than the spatial crop, so the
spatial crop lies inside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from engines.data.cache import build_cache, load_cached
from engines.faces.align import recrop
from engines.manifest import ManifestEntry
from engines.registry import InputSpec, ModelPack, fused_logit

log = logging.getLogger(__name__)


def check_fits(outer: InputSpec, inner: InputSpec) -> None:
    """The inner crop must lie inside the cached (outer) one, or its border would be invented."""
    unit = outer.size / outer.scale  # outer pixels per face unit
    side = inner.scale * unit
    top = outer.size / 2 + (inner.center_y - outer.center_y) * unit - side / 2
    if side > outer.size or top < 0 or top + side > outer.size:
        raise ValueError(f"the {inner.size} px crop ({inner.scale} units) does not fit inside "
                         f"the {outer.size} px cached crop ({outer.scale} units)")


def spatial_logits(pack: ModelPack, outer: InputSpec, entries: list[ManifestEntry],
                   cache_spec, cache_dir: Path) -> dict[str, np.ndarray]:
    """{rel: the spatial pack's logit of each cached crop}, cached per pack and crop."""
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    crops = build_cache(entries, cache_spec, cache_dir, workers=1)
    key = hashlib.sha1(f"{pack.id}|{pack.card.onnx_sha256}|{outer}|{cache_spec}".encode()).hexdigest()[:10]
    folder = cache_dir / f"spatial-logits-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    check_fits(outer, pack.card.input)
    engine: OnnxRuntimeEngine | None = None
    out: dict[str, np.ndarray] = {}
    for entry in entries:
        if entry.rel not in crops:
            continue
        target = folder / f"{entry.key}.npy"
        if not target.is_file():
            images = load_cached(crops[entry.rel])["crops"]
            engine = engine or OnnxRuntimeEngine(pack)
            logits = (engine.infer(recrop(images, outer.align, pack.card.input.align)).astype(np.float32)
                      if len(images) else np.zeros(0, np.float32))
            tmp = target.with_suffix(".tmp.npy")
            np.save(tmp, logits)
            os.replace(tmp, target)
        out[entry.rel] = np.load(target)
    return out


def scales(deep_real_logits: list[np.ndarray], spatial_real_logits: list[np.ndarray]) -> tuple[float, float]:
    """Each model's logit spread (standard deviation) on the same real crops."""
    deep = np.concatenate(deep_real_logits)
    spatial = np.concatenate(spatial_real_logits)
    return float(np.std(deep)) or 1.0, float(np.std(spatial)) or 1.0


def fused(deep: np.ndarray, spatial: np.ndarray, weight: float, deep_scale: float,
          spatial_scale: float) -> np.ndarray:
    """The fused logit: engines.registry's formula, the one the agent applies."""
    return fused_logit(deep, spatial, weight, deep_scale, spatial_scale)
