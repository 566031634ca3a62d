"""How a temporal pack scores validation real windows against each kind of pseudo-fake window.

    python -m engines.train.window_probe --data DIR [--pack engines/packs/temporal-sbi]
        [--config configs/train/temporal-sbi.yaml] [--variants clip,reenact] [--reenact-mode full]

A diagnostic for pseudo-fakes a pack was not trained on: before training on a new kind of
window fake, see whether the shipped model already tells it from real windows (AUC near 1),
misses it (near 0.5), or reads it as more real than real (below 0.5, a cue the model has
learned backwards). Windows: the config's validation split and clip cache, up to
`--per-video` windows per real video with a face mesh on every frame; each variant's fakes are
made from the same windows with a fixed seed. Prints one AUC per variant.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def probe(pack: Path, config: Path, data: Path, variants: list[str], per_video: int = 6,
          cache: Path | None = None, reenact_mode: str | None = None,
          seed: int = 0, max_videos: int = 0) -> dict[str, dict]:
    """{variant: {"auc": ..., "windows": n}} for the pack's logits on real windows vs fakes."""
    from dataclasses import replace

    from engines import metrics
    from engines.data.clips import build_clip_cache, spec_from_config
    from engines.manifest import read_manifest, split_by_group
    from engines.registry import resolve_pack
    from engines.runtime.sessions import cpu_session
    from engines.synthesis.sbi import SBIConfig
    from engines.train.run_setup import train_fakes
    from engines.train.temporal import (
        DEFAULT_CLIP_CACHE,
        load_config,
        target_spec,
        temporal_window_logits,
    )
    from engines.train.temporal_data import WindowBank, WindowFakeConfig, blend_window

    cfg = load_config(config)
    spec = spec_from_config(cfg)
    _, frames = target_spec(cfg)
    model = resolve_pack(pack)
    target = model.card.input.align
    entries = read_manifest(data)
    split_cfg = cfg.get("split") or {}
    split = split_by_group(entries, val_fraction=float(split_cfg.get("val_fraction", 0.25)),
                           seed=int(split_cfg.get("seed", 0)), train_fakes=train_fakes(split_cfg))
    videos = [e for e in split.val if e.kind == "video" and not e.is_fake]
    if max_videos:
        videos = videos[:max_videos]
    cached = build_clip_cache(videos, spec, Path(cache or DEFAULT_CLIP_CACHE), progress=False)
    smooth = float(cfg["fakes"].get("mesh_smooth", 1.0))
    bank = WindowBank.load(list(cached.values()), frames, require_mesh=True,
                           per_file=per_video, mesh_smooth=smooth)
    fakes = WindowFakeConfig.from_dict(cfg["fakes"])
    if reenact_mode is not None:
        fakes = replace(fakes, reenact_full_p=1.0 if reenact_mode == "full" else 0.0)
    sbi = SBIConfig.from_dict(cfg["sbi"])
    session = cpu_session(model.onnx_path)
    real = [np.asarray(bank.window(w)[0]) for w in range(len(bank))]
    real_logits = temporal_window_logits(session, spec.loose, target, real)
    out = {}
    for variant in variants:
        rng = np.random.default_rng([seed, 7])
        made = [blend_window(np.asarray(c), m, rng, sbi, fakes, variant)[0]
                for c, m in (bank.window(w) for w in range(len(bank)))]
        fake_logits = temporal_window_logits(session, spec.loose, target, made)
        y = np.r_[np.zeros(len(real_logits)), np.ones(len(fake_logits))]
        out[variant] = {"auc": round(metrics.auc(y, np.r_[real_logits, fake_logits]), 4),
                        "windows": len(made)}
    return out


def main(argv: list[str] | None = None) -> int:
    from engines.train.temporal_data import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"))
    parser.add_argument("--pack", default="temporal-sbi", help="shipped pack name or folder")
    parser.add_argument("--config", type=Path, default=Path("configs/train/temporal-sbi.yaml"),
                        help="temporal training YAML: split, clip cache, fake settings")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reenact-mode", choices=("full", "paste"), default=None,
                        help="reenact windows of one mode only (default: the config's mix)")
    parser.add_argument("--per-video", type=int, default=6)
    parser.add_argument("--cache", type=Path, default=os.environ.get("VERITY_CLIP_CACHE_DIR"))
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown} (known: {', '.join(VARIANTS)})")
    result = probe(Path(args.pack), args.config, Path(args.data), variants, args.per_video,
                   args.cache, args.reenact_mode)
    for variant, row in result.items():
        print(f"{variant:12} AUC {row['auc']:.3f} (real windows vs {row['windows']} fakes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
