"""Frozen-backbone features of the face-crop cache, for training and measuring deep heads.

For every cached file (engines.data.cache: the run-time crops themselves), the backbone runs
once on every crop and two tokens summaries per layer are stored: the class token and the
mean of the patch tokens (float16, N x layers x width). Heads are then fitted in seconds, so
layer choice, data mix and leave-one-family-out folds cost no backbone time.

    python -m engines.train.deep_features --config configs/train/deep-clip.yaml --data DIR
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from engines.backbone import feature_graph, locate
from engines.data.cache import CacheSpec, build_cache, load_cached
from engines.manifest import ManifestEntry, read_manifest
from engines.registry import BackboneSpec
from engines.train.run_setup import load_config

log = logging.getLogger(__name__)


def cache_spec(cfg: dict) -> CacheSpec:
    """The face-crop cache whose crops are the deep pack's input: the config's `input` crop
    (widen 1.0), so training sees exactly what the agent feeds the backbone."""
    return CacheSpec.from_dict({**cfg.get("faces", {}), "crop_scale": cfg["input"]["scale"],
                                "crop_center_y": cfg["input"]["center_y"]})


def backbone_spec(cfg: dict) -> BackboneSpec:
    return BackboneSpec.model_validate(cfg["backbone"])


class FeatureExtractor:
    """One ONNX Runtime session of preprocessing + backbone, every layer as an output.

    One crop per call: the INT8 backbone quantizes its activations with one scale per call
    (DynamicQuantizeLinear), so a crop's features would depend on the other crops batched
    with it. The agent runs the deep look one face per call for the same reason."""

    def __init__(self, spec: BackboneSpec, threads: int = 0, batch: int = 1) -> None:
        from engines.runtime.sessions import cpu_session

        self.layers = list(spec.layers)
        graph = feature_graph(spec, locate(spec), self.layers)
        self.session = cpu_session(graph.SerializeToString(), threads)
        self.batch = batch

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """{"cls", "mean"}: (N, layers, width) float16."""
        cls_parts, mean_parts = [], []
        for i in range(0, len(crops), self.batch):
            outs = self.session.run(self.layers, {"crops": np.ascontiguousarray(crops[i:i + self.batch])})
            tokens = np.stack(outs, axis=1)  # (n, layers, tokens, width)
            cls_parts.append(tokens[:, :, 0].astype(np.float16))
            mean_parts.append(tokens[:, :, 1:].mean(2).astype(np.float16))
        if not cls_parts:
            empty = np.zeros((0, len(self.layers), 0), np.float16)
            return {"cls": empty, "mean": empty}
        return {"cls": np.concatenate(cls_parts), "mean": np.concatenate(mean_parts)}


def features_folder(cache_dir: Path, spec: CacheSpec, backbone: BackboneSpec) -> Path:
    key = hashlib.sha1(f"{spec.digest()}:{backbone.sha256}:{sorted(backbone.layers.items())}:b1"
                       .encode()).hexdigest()[:10]
    return Path(cache_dir) / f"deep-{key}"


def build_features(entries: list[ManifestEntry], cfg: dict, cache_dir: Path, *,
                   threads: int = 0) -> dict[str, Path]:
    """Crops (engines.data.cache) then backbone features for every entry; {rel: npz}."""
    spec = cache_spec(cfg)
    crops = build_cache(entries, spec, cache_dir, workers=int(cfg.get("faces", {}).get("workers", 1)))
    backbone = backbone_spec(cfg)
    folder = features_folder(cache_dir, spec, backbone)
    folder.mkdir(parents=True, exist_ok=True)
    extractor: FeatureExtractor | None = None
    out: dict[str, Path] = {}
    todo = [e for e in entries if e.rel in crops]
    started = time.time()
    for n, entry in enumerate(todo):
        target = folder / f"{entry.key}.npz"
        if not target.is_file():
            extractor = extractor or FeatureExtractor(backbone, threads)
            cached = load_cached(crops[entry.rel])
            feats = extractor(cached["crops"])
            tmp = target.with_suffix(".tmp.npz")
            np.savez(tmp, cls=feats["cls"], mean=feats["mean"], frame=cached["frame"],
                     face=cached["face"], interocular=cached["interocular"])
            os.replace(tmp, target)
            if n % 50 == 0:
                log.info("features: %d/%d files (%.0f s)", n, len(todo), time.time() - started)
        out[entry.rel] = target
    return out


def build_self_blend_features(entries: list[ManifestEntry], cfg: dict, cache_dir: Path, *,
                              seed: int = 0, threads: int = 0) -> dict[str, Path]:
    """Backbone features of one self-blend (engines.synthesis.sbi, the published recipe's
    ranges) of every cached real crop that has a face mesh: pseudo-fakes with a blending
    boundary, made from the real file's own face. {rel: npz}, real files only."""
    from engines.synthesis.sbi import SBIParams, self_blend

    spec = cache_spec(cfg)
    crops = build_cache(entries, spec, cache_dir, workers=int(cfg.get("faces", {}).get("workers", 1)))
    backbone = backbone_spec(cfg)
    folder = features_folder(cache_dir, spec, backbone).with_name(
        features_folder(cache_dir, spec, backbone).name + f"-sbi{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    extractor: FeatureExtractor | None = None
    out: dict[str, Path] = {}
    for entry in entries:
        if entry.is_fake or entry.rel not in crops:
            continue
        target = folder / f"{entry.key}.npz"
        if not target.is_file():
            cached = load_cached(crops[entry.rel])
            rng = np.random.default_rng([seed, int(hashlib.sha1(entry.rel.encode()).hexdigest()[:8], 16)])
            blends = [self_blend(crop, mesh, SBIParams.sample(rng), rng)[0]
                      for crop, mesh in zip(cached["crops"], cached["mesh"])
                      if np.isfinite(mesh).all()]
            extractor = extractor or FeatureExtractor(backbone, threads)
            feats = extractor(np.stack(blends) if blends else np.zeros((0, *cached["crops"].shape[1:]), np.uint8))
            tmp = target.with_suffix(".tmp.npz")
            np.savez(tmp, cls=feats["cls"], mean=feats["mean"])
            os.replace(tmp, target)
        out[entry.rel] = target
    return out


DEGRADE_DOWNSCALE = (1.5, 3.5)
DEGRADE_JPEG = (35, 80)


def degrade(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One crop as a smaller, harder-compressed source would give it: downscaled by a factor
    drawn from DEGRADE_DOWNSCALE (area), back to its size (bilinear), then JPEG at a quality
    drawn from DEGRADE_JPEG."""
    import cv2

    from engines.perturbations import jpeg_roundtrip

    h, w = crop.shape[:2]
    factor = rng.uniform(*DEGRADE_DOWNSCALE)
    small = cv2.resize(crop, (max(8, round(w / factor)), max(8, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return jpeg_roundtrip(back, rng.uniform(*DEGRADE_JPEG))


def build_degraded_features(entries: list[ManifestEntry], cfg: dict, cache_dir: Path, *,
                            seed: int = 0, threads: int = 0) -> dict[str, Path]:
    """Backbone features of one degraded copy (`degrade`) of every cached crop, real and fake
    alike: resolution and compression then differ within each class, not between them, so a
    head cannot take "sharp" for real or "soft" for fake. {rel: npz}."""
    spec = cache_spec(cfg)
    crops = build_cache(entries, spec, cache_dir, workers=int(cfg.get("faces", {}).get("workers", 1)))
    backbone = backbone_spec(cfg)
    base = features_folder(cache_dir, spec, backbone)
    folder = base.with_name(base.name + f"-deg{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    extractor: FeatureExtractor | None = None
    out: dict[str, Path] = {}
    started = time.time()
    todo = [e for e in entries if e.rel in crops]
    for n, entry in enumerate(todo):
        target = folder / f"{entry.key}.npz"
        if not target.is_file():
            cached = load_cached(crops[entry.rel])
            rng = np.random.default_rng([seed, int(hashlib.sha1(entry.rel.encode()).hexdigest()[:8], 16)])
            degraded = np.stack([degrade(c, rng) for c in cached["crops"]]) if len(cached["crops"]) \
                else cached["crops"]
            extractor = extractor or FeatureExtractor(backbone, threads)
            feats = extractor(degraded)
            tmp = target.with_suffix(".tmp.npz")
            np.savez(tmp, cls=feats["cls"], mean=feats["mean"])
            os.replace(tmp, target)
            if n % 50 == 0:
                log.info("degraded features: %d/%d files (%.0f s)", n, len(todo), time.time() - started)
        out[entry.rel] = target
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"))
    parser.add_argument("--cache", default=".cache/faces", type=Path)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(args.config, ("input", "faces", "backbone"))
    done = build_features(read_manifest(args.data), cfg, args.cache, threads=args.threads)
    log.info("features of %d files in %s", len(done), args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
