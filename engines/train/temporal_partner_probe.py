"""Experiment: does the temporal model add to the deep head's joint decision with the spatial model?

The deep card's fusion joins the CLIP head with spatial-sbi (both in units of their logit
spread on the head's training real crops). temporal-sbi also learned from self-blends only
(never a real fake), so it is an honest partner for every fold. Per video fold of the deep
trainer (its left-out head, its test files):

    file score = head / s_head + w_spatial x spatial / s_spatial + w_temporal x temporal / s_temporal

head and spatial: the mean logit over the deep trainer's cached crops (as `verity train deep`
measures); temporal: the mean logit over up to 12 windows of the temporal card's protocol
(engines.data.clips cache, the temporal config's spec); each spread on the fold's training
real videos. A video without a window gets the training reals' mean temporal logit (no
opinion). The weights are chosen leave-one-fold-out: each fold's pair is the one best on the
other folds' mean AUC.

    python -m engines.train.temporal_partner_probe --data DIR

Measured (2026-12-05, 2 cores, 3 min on cached features and a 3-minute clip cache; left-out
file AUC; the four video folds' test files, 2 of 65 / 1 of 33 / 1 of 37 / 1 of 37 without a
temporal window): temporal-sbi alone scored face swap 0.871, lip sync 0.868, talking head
0.671, synthesis 0.837 (head alone 0.892, 0.923, 0.786, 0.939; shipped fusion, weights
0.4 / 0: 0.911, 0.934, 0.849, 0.946). With the temporal partner, 0.4 / 0.2: 0.916, 0.934,
0.849, 0.939; chosen leave-one-fold-out (0.6 / 0.1 for every fold): 0.919, 0.934, 0.873, 0.946,
of which 0.6 / 0 alone gives 0.915, 0.934, 0.865, 0.946. Fakes above every real of their fold's
test: 21 of 54 at 0.4 / 0, 21 at 0.6 / 0.1, 22 and 23 at 0.4 / 0.2 and 0.4 / 0.5. Up to +0.008
AUC from the temporal model for a second network on every track (~2.8 ms per face): not
taken into the fusion.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines import metrics
from engines.train import deep

log = logging.getLogger("engines.train.temporal_partner_probe")

SPATIAL_WEIGHTS = (0.0, 0.2, 0.4, 0.6)
TEMPORAL_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class FileParts:
    """One test file's three logits, each already divided by its spread."""

    label: int
    head: float
    spatial: float
    temporal: float
    has_window: bool

    def score(self, w_spatial: float, w_temporal: float) -> float:
        return self.head + w_spatial * self.spatial + w_temporal * self.temporal


def fold_aucs(parts: list[FileParts]) -> dict[tuple[float, float], float]:
    labels = [p.label for p in parts]
    return {(ws, wt): metrics.auc(labels, [p.score(ws, wt) for p in parts])
            for ws, wt in itertools.product(SPATIAL_WEIGHTS, TEMPORAL_WEIGHTS)}


def above_every_real(parts: list[FileParts], w_spatial: float, w_temporal: float) -> int:
    """Fakes scoring above every real file of the same test: what a threshold no real
    reaches would catch."""
    top = max(p.score(w_spatial, w_temporal) for p in parts if not p.label)
    return sum(p.score(w_spatial, w_temporal) > top for p in parts if p.label)


def chosen_weights(tables: dict[str, dict[tuple[float, float], float]], fold: str
                   ) -> tuple[float, float]:
    """The weight pair with the best mean AUC over the other folds (never the fold itself)."""
    others = [t for name, t in tables.items() if name != fold]
    if not others:
        raise ValueError("leave-one-fold-out needs at least two folds")
    return max(others[0], key=lambda k: (float(np.mean([t[k] for t in others])), -k[1], -k[0]))


def temporal_file_logits(entries, data_config: Path, cache: Path) -> dict[str, np.ndarray]:
    """{rel: temporal-sbi's logit of each evaluation window} for every video with a window."""
    from engines.data.clips import build_clip_cache, spec_from_config
    from engines.registry import resolve_pack
    from engines.runtime.sessions import cpu_session
    from engines.train.temporal import load_config, target_spec, temporal_window_logits
    from engines.train.temporal_data import WindowBank

    cfg = load_config(data_config)
    spec = spec_from_config(cfg)
    videos = [e for e in entries if e.kind == "video"]
    cached = build_clip_cache(videos, spec, cache, workers=int(cfg["clips"].get("workers", 1)))
    target, frames = target_spec(cfg)
    per_video = int((cfg.get("eval") or {}).get("windows_per_video", 12))
    bank = WindowBank.load([cached[e.rel] for e in videos if e.rel in cached], frames,
                           per_file=per_video)
    session = cpu_session(resolve_pack("temporal-sbi").onnx_path)
    logits = temporal_window_logits(session, spec.loose, target,
                                    [bank.window(w)[0] for w in range(len(bank))])
    owner = np.array([bank.window_file(w) for w in range(len(bank))])
    return {bank.files[i]: logits[owner == i] for i in range(len(bank.files))}


def fold_parts(files, fold: str, val_real: set[str], head: deep.Head, fusion: deep.FusionData,
               temporal: dict[str, np.ndarray]) -> list[FileParts]:
    _, train, test = deep.fold_sets(files, fold, val_real)
    head_scale, spatial_scale = deep.head_scales(head, train, fusion)
    train_reals = [temporal[f.entry.rel] for f in deep.measured(train)
                   if f.fold == "real" and f.entry.rel in temporal]
    pooled = np.concatenate(train_reals)
    t_scale, t_neutral = float(np.std(pooled)) or 1.0, float(np.mean(pooled))
    return [FileParts(f.y, deep.file_score(head.logits(f.x)) / head_scale,
                      deep.file_score(fusion.logits[f.entry.rel]) / spatial_scale,
                      (deep.file_score(temporal[f.entry.rel]) if f.entry.rel in temporal
                       else t_neutral) / t_scale,
                      f.entry.rel in temporal)
            for f in test]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    deep.add_data_arguments(parser)
    parser.add_argument("--temporal-config", type=Path,
                        default=Path("configs/train/temporal-sbi.yaml"))
    parser.add_argument("--clip-cache", type=Path, default=Path(".cache/clips"))
    args = deep.parse_data_arguments(parser, argv)
    data = deep.training_data(args.data, args.config, args.cache)
    files, val_real = data.files, data.val_real
    _, _, heads = deep.leave_one_out(files, val_real, data.cfg)
    fusion = deep.spatial_fusion_data(data.entries, data.cfg, args.cache)
    temporal = temporal_file_logits(data.entries, args.temporal_config, args.clip_cache)

    tables: dict[str, dict] = {}
    all_parts: dict[str, list[FileParts]] = {}
    for fold, head in heads.items():
        fold_files, _, _ = deep.fold_sets(files, fold, val_real)
        if any(f.entry.kind != "video" for f in fold_files):
            continue  # stills have no window
        parts = fold_parts(files, fold, val_real, head, fusion, temporal)
        tables[fold] = fold_aucs(parts)
        all_parts[fold] = parts
        labels = [p.label for p in parts]
        print(f"{fold}: {len(parts)} test files ({sum(not p.has_window for p in parts)} without "
              f"a window); alone: head {metrics.auc(labels, [p.head for p in parts]):.3f}, "
              f"spatial {metrics.auc(labels, [p.spatial for p in parts]):.3f}, "
              f"temporal {metrics.auc(labels, [p.temporal for p in parts]):.3f}")
    print("AUC by (spatial weight, temporal weight):")
    print("fold / w_spatial".ljust(30) + " ".join(f"{wt:6.1f}" for wt in TEMPORAL_WEIGHTS))
    for ws in SPATIAL_WEIGHTS:
        for fold, table in tables.items():
            print(f"{fold} / {ws}".ljust(30) + " ".join(f"{table[(ws, wt)]:6.3f}"
                                                         for wt in TEMPORAL_WEIGHTS))
    for fold, table in tables.items():
        pick = chosen_weights(tables, fold)
        print(f"leave-one-fold-out {fold}: weights {pick}: {table[pick]:.3f} "
              f"(shipped fusion 0.4 / 0: {table[(0.4, 0.0)]:.3f})")
    fakes = sum(p.label for parts in all_parts.values() for p in parts)
    for pair in ((0.4, 0.0), (0.6, 0.0), (0.6, 0.1), (0.4, 0.2), (0.4, 0.5)):
        caught = sum(above_every_real(parts, *pair) for parts in all_parts.values())
        print(f"weights {pair}: {caught} of {fakes} fakes above every real of their fold's test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
