"""How turned the training faces were: the quality gate's yaw over the training data.

    python -m engines.data.pose_survey --data DIR [--config configs/train/temporal-sbi.yaml]

Prints the distribution of `engines.faces.pose.yaw_ratio` over the face frames of the temporal
model's window cache (the tracker's keypoints, every analysed frame), by split and label: it is
what chose the gate's default (faces.quality.max_yaw), so that the gate admits the poses the
models were trained on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from engines.faces.pose import yaw_ratio

LIMITS = (0.35, 0.6)
"""Gate settings the command reports shares for: the former default and the current one."""


def describe(yaws: np.ndarray) -> str:
    shares = ", ".join(f"{(yaws > limit).mean():.1%} above {limit}" for limit in LIMITS)
    q = np.quantile(yaws, [0.5, 0.95, 0.99, 0.995])
    return (f"{len(yaws)} frames; {shares}; median {q[0]:.3f}, 95% {q[1]:.3f}, "
            f"99% {q[2]:.3f}, 99.5% {q[3]:.3f}")


def main(argv: list[str] | None = None) -> int:
    import yaml

    from engines.data.clips import build_clip_cache, spec_from_config
    from engines.manifest import read_manifest, split_by_group
    from engines.train.run_setup import train_fakes
    from engines.train.temporal import DEFAULT_CLIP_CACHE

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"))
    parser.add_argument("--config", default="configs/train/temporal-sbi.yaml",
                        help="temporal training YAML: its clip cache and split")
    parser.add_argument("--cache", default=os.environ.get("VERITY_CLIP_CACHE_DIR")
                        or str(DEFAULT_CLIP_CACHE))
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    cfg = yaml.safe_load(Path(args.config).read_text())
    entries = read_manifest(args.data)  # the split is drawn over every file, as in training
    split_cfg = cfg.get("split") or {}
    split = split_by_group(entries, val_fraction=float(split_cfg.get("val_fraction", 0.25)),
                           seed=int(split_cfg.get("seed", 0)), train_fakes=train_fakes(split_cfg))
    cached = build_clip_cache(entries, spec_from_config(cfg), Path(args.cache))
    for side, side_entries in (("train", split.train), ("validation", split.val)):
        for label in ("real", "fake"):
            files = [cached[e.rel] for e in side_entries if e.label == label and e.rel in cached]
            if not files:
                continue
            yaws = np.concatenate([yaw_ratio(np.load(f)["keypoints"]) for f in files])
            print(f"{side} {label} ({len(files)} videos): {describe(yaws)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
