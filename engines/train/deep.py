"""Train a deep pack: a linear head on a frozen pretrained backbone, from real fakes of many
generators, measured leave-one-family-out.

    verity train deep --config configs/train/deep-clip.yaml --data DIR [--out DIR]
    (or: python -m engines.train.deep ...)

The recipe:
1. Face crops of every manifest file (engines.data.cache, the run-time crop) and the
   backbone's token summaries per layer (engines.train.deep_features).
2. Split by group: a seeded share of the real-only groups is validation (never trained on);
   every other group trains, fakes of every family included.
3. Leave one family out, for each fake family: a head trained without any group that holds
   that family (its paired reals go too) scores that family's files against the validation
   reals and the left-out groups' reals. These are the figures the card reports: each one from
   a head that never saw that family.
4. The shipped head trains on every training group. Its calibration (Platt) is fitted on the
   validation reals (shipped head) against the left-out fakes (their fold's head), so its
   probabilities speak for generators it has not seen; its per-frame threshold holds 1% of
   validation real frames.

Rows are weighted so that each file counts once, each fake family equally, and real videos and
real stills equally, fakes and reals in balance: 619 GAN stills do not outvote 7 lip-sync
videos.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engines import metrics
from engines.manifest import ManifestEntry, read_manifest
from engines.registry import (
    PACKS_DIR,
    BackboneSpec,
    Calibration,
    InputSpec,
    ModelCard,
    ModelPack,
    SpatialFusion,
    write_card,
)
from engines.train.deep_head import TOKENS, HeadLayout, export_head

log = logging.getLogger("verity.train")


# -- config -----------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSection(_Strict):
    size: int = Field(224, ge=32, le=1024)
    scale: float = Field(3.5, gt=0)
    center_y: float = 0.5


class FacesSection(_Strict):
    """engines.data.cache.CacheSpec, less the crop (taken from `input`)."""

    frames_per_video: int = Field(16, ge=1)
    detector_range: str = "both"
    min_confidence: float = Field(0.5, ge=0, le=1)
    min_interocular: float = Field(24, ge=0)
    max_faces_per_frame: int = Field(1, ge=1)
    widen: float = Field(1.0, ge=1.0)
    loose_size: int = Field(224, ge=32)
    still_interocular: float = Field(48, gt=0)
    still_jpeg_quality: int = Field(90, ge=1, le=100)
    watermark_crop: float = Field(0.2, ge=0, lt=1)
    mesh_for_fakes: bool = False
    workers: int = Field(1, ge=1)


class HeadSection(_Strict):
    layers: list[str] = Field(min_length=1, description="Backbone layers the head reads.")
    tokens: list[str] = Field(["cls"], min_length=1, description="cls and/or mean (patch tokens).")
    c: float = Field(0.001, gt=0, description="Inverse L2 strength of the logistic regression "
                     "(hidden: 0).")
    hidden: int = Field(0, ge=0, le=4096, description="Units of one hidden ReLU layer; 0: linear.")
    alpha: float = Field(1.0, ge=0, description="L2 strength of the hidden-layer head.")
    max_iter: int = Field(3000, ge=10)

    @field_validator("tokens")
    @classmethod
    def _known_tokens(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if t not in TOKENS]
        if bad:
            raise ValueError(f"unknown token summary {bad}; known: {list(TOKENS)}")
        return value


class SplitSection(_Strict):
    val_fraction: float = Field(0.25, gt=0, lt=1, description="Share of real-only groups kept "
                                "for validation (never trained on).")
    seed: int = 0


class SpatialFusionSection(_Strict):
    """The deep score fused with the always-on spatial model (engines.train.deep_fusion)."""

    pack: str = Field(description="Spatial pack (shipped name or folder) it is fitted with; "
                      "the agent refuses the fusion with any other.")
    weight: float = Field(gt=0, le=10, description="The spatial logit's weight, both logits in "
                          "units of their spread on training real crops.")
    window_s: float = Field(5.0, gt=0, description="At run time, the spatial logit is the "
                            "mean over a track's last window_s seconds of frames.")


class DeepTrainConfig(_Strict):
    name: str
    version: str
    seed: int = 0
    input: InputSection = Field(default_factory=InputSection)
    faces: FacesSection = Field(default_factory=FacesSection)
    backbone: BackboneSpec
    head: HeadSection
    split: SplitSection = Field(default_factory=SplitSection)
    families: dict[str, list[str]] = Field(
        description="Fold name -> the manifest method families it holds; each fold is left "
        "out of training in turn and measured.")
    threshold_fpr: float = Field(0.01, gt=0, lt=1, description="Per-frame threshold: this "
                                 "share of validation real frames at or above it.")
    real_folds: int = Field(5, ge=0, le=50, description="Cross-fitting for calibration: the "
                            "training groups holding real videos are dealt into this many folds, "
                            "and with --fold-packs each fold's head (trained without its groups) "
                            "is written, so `verity calibrate` scores every real clip with a head "
                            "that never saw it, not only the validation reals; 0: validation "
                            "reals only.")
    degraded_copies: bool = Field(False, description="Add one degraded copy of every crop, "
                                  "real and fake alike (engines.train.deep_features.degrade: "
                                  "downscaled, then JPEG), to training; measured files stay "
                                  "as they are.")
    spatial_fusion: SpatialFusionSection | None = Field(
        None, description="Fit the joint decision with the spatial model (its figures beside "
        "the head's; `models.deep_rule: fused` in the agent); null: the head alone.")
    self_blends: bool = Field(False, description="Add one self-blend of every training real "
                              "crop (engines.synthesis.sbi) as one more fake family in training; "
                              "never a measured fold.")

    def check(self) -> None:
        missing = [name for name in self.head.layers if name not in self.backbone.layers]
        if missing:
            raise ValueError(f"head.layers: {missing} not in backbone.layers "
                             f"({', '.join(self.backbone.layers)})")
        if self.input.size != self.backbone.size:
            raise ValueError(f"input.size {self.input.size} differs from backbone.size "
                             f"{self.backbone.size}")

    def as_cache_dict(self) -> dict:
        """The dict form engines.train.deep_features reads."""
        return {"input": self.input.model_dump(), "faces": self.faces.model_dump(),
                "backbone": self.backbone.model_dump()}


def load_config(path: Path) -> DeepTrainConfig:
    """A typed config; `base: FILE` (engines.train.run_setup.read_config) lets an experiment
    hold only what it changes."""
    from engines.train.run_setup import read_config

    config = DeepTrainConfig.model_validate(read_config(Path(path)))
    config.check()
    return config


def config_error_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


# -- data -------------------------------------------------------------------------------------

@dataclass
class FileFeatures:
    entry: ManifestEntry
    fold: str  # "real" or the fold the fake belongs to
    x: np.ndarray  # (n crops, D) float32
    augmented: bool = False
    """A training-only copy (degraded crops): trained on, never measured."""

    @property
    def y(self) -> int:
        return int(self.entry.is_fake)


def load_files(entries: list[ManifestEntry], paths: dict[str, Path], layout: HeadLayout,
               layer_names: list[str], fold_of: dict[str, str]) -> list[FileFeatures]:
    out = []
    for entry in entries:
        path = paths.get(entry.rel)
        if path is None:
            continue
        with np.load(path) as z:
            if len(z["cls"]) == 0:
                continue  # no face found: nothing to learn from
            x = layout.select({"cls": z["cls"], "mean": z["mean"]}, layer_names)
        fold = "real" if not entry.is_fake else fold_of.get(entry.family)
        if fold is None:
            log.warning("%s: family %s is in no fold of the config; left out", entry.rel, entry.family)
            continue
        out.append(FileFeatures(entry, fold, x))
    return out


SELF_BLEND = "self_blend"


def self_blend_files(entries, cfg: DeepTrainConfig, cache: Path, layout: HeadLayout,
                     layer_names: list[str], threads: int) -> list[FileFeatures]:
    """Self-blends of each real file's crops, as fakes of the pseudo-family `self_blend`
    (in the real file's group, so they leave training with it)."""
    from dataclasses import replace

    from engines.train.deep_features import build_self_blend_features

    paths = build_self_blend_features(entries, cfg.as_cache_dict(), cache, seed=cfg.seed,
                                      threads=threads)
    out = []
    for entry in entries:
        if entry.rel not in paths:
            continue
        with np.load(paths[entry.rel]) as z:
            if len(z["cls"]):
                x = layout.select({"cls": z["cls"], "mean": z["mean"]}, layer_names)
                fake = replace(entry, label="fake", method=f"{SELF_BLEND}:engines.synthesis.sbi")
                out.append(FileFeatures(fake, SELF_BLEND, x))
    return out


def degraded_files(entries, cfg: DeepTrainConfig, cache: Path, layout: HeadLayout,
                   layer_names: list[str], fold_of: dict[str, str], threads: int) -> list[FileFeatures]:
    """One degraded copy of every file (same label, fold and group: it leaves training with
    its file), marked `augmented` so that no figure is measured on it."""
    from dataclasses import replace

    from engines.train.deep_features import build_degraded_features

    paths = build_degraded_features(entries, cfg.as_cache_dict(), cache, seed=cfg.seed,
                                    threads=threads)
    return [replace(f, augmented=True)
            for f in load_files(entries, paths, layout, layer_names, fold_of)]


def training_files(entries, paths: dict[str, Path], cfg: DeepTrainConfig, cache: Path,
                   layout: HeadLayout, layer_names: list[str], fold_of: dict[str, str],
                   threads: int = 0) -> list[FileFeatures]:
    """Every file with a face, then the config's extra training rows (self-blends, degraded
    copies)."""
    files = load_files(entries, paths, layout, layer_names, fold_of)
    if cfg.self_blends:
        files += self_blend_files(entries, cfg, cache, layout, layer_names, threads)
    if cfg.degraded_copies:
        files += degraded_files(entries, cfg, cache, layout, layer_names, fold_of, threads)
    return files


@dataclass
class TrainingData:
    """What every experiment on the deep trainer's cached features starts from."""

    cfg: DeepTrainConfig
    entries: list[ManifestEntry]
    paths: dict[str, Path]  # {rel: cached backbone features}
    layout: HeadLayout
    files: list[FileFeatures]  # every file with a face, then the config's extra training rows
    val_real: set[str]  # validation real groups


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --config, --cache: the face media, the deep config and the feature cache."""
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"),
                        help="face media folder with manifest.csv (or VERITY_DATA_DIR)")
    parser.add_argument("--config", type=Path, default=Path("configs/train/deep-clip.yaml"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/faces"))


def parse_data_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """A deep experiment's arguments: refused without face media; log lines carry the time."""
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return args


def training_data(data: str | Path, config: Path, cache: Path, threads: int = 0) -> TrainingData:
    """The config, the manifest, cached features and the trainer's files, as `verity train
    deep` builds them (features are computed once and cached)."""
    from engines.train.deep_features import build_features

    cfg = load_config(config)
    entries = read_manifest(data)
    paths = build_features(entries, cfg.as_cache_dict(), cache, threads=threads)
    layout = HeadLayout(tuple(cfg.head.layers), tuple(cfg.head.tokens))
    fold_of = {family: fold for fold, families in cfg.families.items() for family in families}
    files = training_files(entries, paths, cfg, cache, layout, list(cfg.backbone.layers), fold_of,
                           threads)
    return TrainingData(cfg, entries, paths, layout, files, validation_real_groups(entries, cfg.split))


def validation_real_groups(entries: list[ManifestEntry], split: SplitSection) -> set[str]:
    """The seeded share of real-only groups kept for validation: the same groups as
    engines.manifest.split_by_group (so `verity eval --split validation --split-config`
    with this config sees them on the validation side)."""
    groups: dict[str, set[bool]] = defaultdict(set)
    for e in entries:
        groups[e.group].add(e.is_fake)
    real_only = sorted(g for g, fakes in groups.items() if fakes == {False})
    rng = random.Random(split.seed)
    rng.shuffle(real_only)
    return set(real_only[: round(split.val_fraction * len(real_only))])


def row_weights(files: list[FileFeatures]) -> np.ndarray:
    """Per crop: each file once, each fake fold equally, real videos and real stills equally,
    the two classes in balance; normalised to mean 1."""
    def bucket(f: FileFeatures) -> tuple[str, str]:
        return (f.fold, f.entry.kind if f.fold == "real" else "")

    counts = Counter(bucket(f) for f in files)
    fake_buckets = sum(1 for b in counts if b[0] != "real")
    real_buckets = sum(1 for b in counts if b[0] == "real")
    parts = []
    for f in files:
        share = 1.0 / (fake_buckets if f.y else real_buckets)
        parts.append(np.full(len(f.x), share / counts[bucket(f)] / len(f.x)))
    w = np.concatenate(parts)
    return w * (len(w) / w.sum())


@dataclass
class Head:
    """A fitted head: standardisation, then (weights, bias) layers with ReLU between."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    mean: np.ndarray
    std: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        for k, (w, b) in enumerate(self.layers):
            z = z @ w + b
            if k < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        return z.reshape(len(x))


def fit_head(files: list[FileFeatures], head: HeadSection, seed: int) -> Head:
    x = np.concatenate([f.x for f in files])
    y = np.concatenate([np.full(len(f.x), f.y) for f in files])
    mean = x.mean(0)
    std = x.std(0) + 1e-3
    z, weights = (x - mean) / std, row_weights(files)
    if head.hidden:
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier((head.hidden,), alpha=head.alpha, max_iter=head.max_iter,
                            random_state=seed).fit(z, y, sample_weight=weights)
        layers = [(w.astype(np.float64), b.astype(np.float64))
                  for w, b in zip(clf.coefs_, clf.intercepts_)]
        return Head(layers, mean, std)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=head.c, max_iter=head.max_iter, random_state=seed)
    clf.fit(z, y, sample_weight=weights)
    return Head([(clf.coef_[0].astype(np.float64).reshape(-1, 1),
                  clf.intercept_.astype(np.float64))], mean, std)


# -- measuring --------------------------------------------------------------------------------

def file_score(logits: np.ndarray) -> float:
    """A file's score: the mean of its crops' logits (sigmoid is monotonic, so the video AUC
    equals that of the mean probability up to ties; the agent's own aggregation is measured by
    `verity eval`)."""
    return float(np.mean(logits))


def measure(labels: list[int], scores: list[float]) -> dict:
    low, high = metrics.auc_interval(labels, scores)
    return {"auc": metrics.auc(labels, scores), "auc_95": [low, high],
            "fakes": int(sum(labels)), "reals": int(len(labels) - sum(labels))}


def measured(files: list[FileFeatures]) -> list[FileFeatures]:
    """The files figures are measured on: training-only copies left out."""
    return [f for f in files if not f.augmented]


def fold_sets(files: list[FileFeatures], fold: str, val_real: set[str]
              ) -> tuple[list[FileFeatures], list[FileFeatures], list[FileFeatures]] | None:
    """(the fold's fake files, the rows a head without the fold trains on, the files it is
    measured on: the fold's fakes, the validation reals and the left-out groups' reals of the
    same kind); None when the fold has no file with a face."""
    clean = measured(files)
    fold_files = [f for f in clean if f.fold == fold]
    if not fold_files:
        return None
    excluded = {f.entry.group for f in fold_files}
    train = [f for f in files if f.entry.group not in excluded and f.entry.group not in val_real]
    kinds = {f.entry.kind for f in fold_files}
    test = fold_files + [f for f in clean if f.fold == "real" and f.entry.kind in kinds
                         and (f.entry.group in val_real or f.entry.group in excluded)]
    return fold_files, train, test


def leave_one_out(files: list[FileFeatures], val_real: set[str], cfg: DeepTrainConfig,
                  fold_dir: Path | None = None, layout: HeadLayout | None = None
                  ) -> tuple[dict, dict[str, np.ndarray], dict[str, Head]]:
    """Per fold: a head without that fold's groups, measured on its fakes against the
    validation reals and the left-out groups' reals of the same kind (video or still).
    Returns (figures, {rel: held-out fake crop logits}, {fold: head})."""
    figures: dict[str, dict] = {}
    held_out_logits: dict[str, np.ndarray] = {}
    heads: dict[str, Head] = {}
    for fold in cfg.families:
        sets = fold_sets(files, fold, val_real)
        if sets is None:
            log.warning("fold %s: no files with faces in the manifest; skipped", fold)
            continue
        fold_files, train, test = sets
        kinds = {f.entry.kind for f in fold_files}
        started = time.time()
        head = fit_head(train, cfg.head, cfg.seed)
        heads[fold] = head
        labels = [f.y for f in test]
        scores = [file_score(head.logits(f.x)) for f in test]
        fig = measure(labels, scores)
        fig["kind"] = "/".join(sorted(kinds))
        fig["families"] = cfg.families[fold]
        fig["trained_on"] = sorted({f.fold for f in train if f.y})
        reals = [(s, f) for s, f in zip(scores, test) if not f.y]
        by_method: dict[str, dict] = {}
        for method in sorted({f.entry.method for f in fold_files}):
            fakes = [(s, f) for s, f in zip(scores, test) if f.y and f.entry.method == method]
            ls = [1] * len(fakes) + [0] * len(reals)
            by_method[method] = {"auc": metrics.auc(ls, [s for s, _ in fakes] + [s for s, _ in reals]),
                                 "fakes": len(fakes)}
        fig["by_method"] = by_method
        figures[fold] = fig
        for f in fold_files:
            held_out_logits[f.entry.rel] = head.logits(f.x)
        log.info("left out %-24s video/still AUC %.3f (%d fakes, %d reals; %.0f s)", fold,
                 fig["auc"], fig["fakes"], fig["reals"], time.time() - started)
    return figures, held_out_logits, heads


def real_cross_fit(files: list[FileFeatures], val_real: set[str], cfg: DeepTrainConfig
                   ) -> dict[str, tuple[Head, set[str]]]:
    """Heads for calibration footage: the training groups holding real videos, dealt (seeded)
    into cfg.real_folds folds; each fold's head trains on every other training group.
    Returns {"real-<k>": (head, the fold's groups)}."""
    groups = sorted({f.entry.group for f in files if f.fold == "real" and f.entry.kind == "video"
                     and f.entry.group not in val_real})
    if cfg.real_folds < 2 or len(groups) < cfg.real_folds:
        return {}
    random.Random(cfg.seed).shuffle(groups)
    folds: dict[str, tuple[Head, set[str]]] = {}
    for k in range(cfg.real_folds):
        held = set(groups[k::cfg.real_folds])
        train = [f for f in files if f.entry.group not in held and f.entry.group not in val_real]
        started = time.time()
        folds[f"real-{k + 1}"] = (fit_head(train, cfg.head, cfg.seed), held)
        log.info("cross-fitted real fold %d: %d groups held out (%.0f s)", k + 1, len(held),
                 time.time() - started)
    return folds


# -- the joint decision with the spatial model ------------------------------------------------

@dataclass
class FusionData:
    """The spatial pack a deep head is fused with, and its logit on every cached crop."""

    pack: ModelPack
    logits: dict[str, np.ndarray]
    section: SpatialFusionSection


def spatial_fusion_data(entries: list[ManifestEntry], cfg: DeepTrainConfig, cache: Path) -> FusionData:
    from engines.registry import resolve_pack
    from engines.train.deep_features import cache_spec
    from engines.train.deep_fusion import spatial_logits

    assert cfg.spatial_fusion is not None
    pack = resolve_pack(cfg.spatial_fusion.pack)
    outer = InputSpec(size=cfg.input.size, scale=cfg.input.scale, center_y=cfg.input.center_y)
    started = time.time()
    logits = spatial_logits(pack, outer, entries, cache_spec(cfg.as_cache_dict()), cache)
    log.info("spatial logits (%s) of %d files' crops (%.0f s)", pack.id, len(logits),
             time.time() - started)
    return FusionData(pack, logits, cfg.spatial_fusion)


def head_scales(head: Head, train: list[FileFeatures], data: FusionData) -> tuple[float, float]:
    """The head's and the spatial model's logit spread on the head's training real crops."""
    from engines.train.deep_fusion import scales

    reals = [f for f in measured(train) if f.fold == "real"]
    return scales([head.logits(f.x) for f in reals], [data.logits[f.entry.rel] for f in reals])


def fused_logits(head: Head, f: FileFeatures, data: FusionData, head_scale: tuple[float, float]
                 ) -> np.ndarray:
    from engines.train.deep_fusion import fused

    return fused(head.logits(f.x), data.logits[f.entry.rel], data.section.weight, *head_scale)


def fused_leave_one_out(files: list[FileFeatures], val_real: set[str], heads: dict[str, Head],
                        data: FusionData, figures: dict) -> dict[str, np.ndarray]:
    """Per fold, its head fused with the spatial model (scales from its own training reals),
    measured on the same files as the head alone: figures[fold]["fused"], and the spatial
    model alone beside it (it never saw a real fake): figures[fold]["spatial_alone"].
    Returns {rel: held-out fake fused crop logits}."""
    held: dict[str, np.ndarray] = {}
    for fold, head in heads.items():
        fold_files, train, test = fold_sets(files, fold, val_real)
        head_scale = head_scales(head, train, data)
        labels = [f.y for f in test]
        fig = measure(labels, [file_score(fused_logits(head, f, data, head_scale)) for f in test])
        fig.update(deep_scale=head_scale[0], spatial_scale=head_scale[1])
        figures[fold]["fused"] = fig
        figures[fold]["spatial_alone"] = measure(
            labels, [file_score(data.logits[f.entry.rel]) for f in test])
        for f in fold_files:
            held[f.entry.rel] = fused_logits(head, f, data, head_scale)
        log.info("left out %-24s fused AUC %.3f (head alone %.3f, spatial alone %.3f)", fold,
                 fig["auc"], figures[fold]["auc"], figures[fold]["spatial_alone"]["auc"])
    return held


def spatial_fusion_card(data: FusionData, head_scale: tuple[float, float],
                        calibration: Calibration) -> SpatialFusion:
    return SpatialFusion(
        spatial_pack=data.pack.id, weight=data.section.weight, deep_scale=head_scale[0],
        spatial_scale=head_scale[1], window_s=data.section.window_s, calibration=calibration,
        fitted_on=(f"{data.pack.id}'s logits on the deep crops' centres (engines.train."
                   "deep_fusion); scales: each model's logit spread on this head's training "
                   "real crops"))


def platt(logits_real: list[np.ndarray], logits_fake: list[np.ndarray]) -> Calibration:
    """Temperature and bias from per-file-balanced frame logits."""
    from sklearn.linear_model import LogisticRegression

    z = np.concatenate(logits_real + logits_fake)
    y = np.concatenate([np.zeros(len(a)) for a in logits_real] + [np.ones(len(a)) for a in logits_fake])
    w = np.concatenate([np.full(len(a), 1.0 / len(a) / len(logits_real)) for a in logits_real]
                       + [np.full(len(a), 1.0 / len(a) / len(logits_fake)) for a in logits_fake])
    clf = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y, sample_weight=w / w.mean())
    slope, bias = float(clf.coef_[0, 0]), float(clf.intercept_[0])
    if slope <= 0:
        raise RuntimeError("calibration: fakes score below reals; the head learned nothing usable")
    return Calibration(temperature=1.0 / slope, bias=bias)


def frame_threshold(real_probabilities: np.ndarray, fpr: float) -> float:
    """Lowest probability >= 0.5 with at most `fpr` of real frames at or above it."""
    values = np.sort(real_probabilities)
    k = int(np.floor(fpr * len(values)))
    candidate = float(values[len(values) - k - 1]) + 1e-6 if k < len(values) else 0.5
    return float(min(max(candidate, 0.5), 0.999))


# -- export -----------------------------------------------------------------------------------

def export_pack(folder: Path, cfg: DeepTrainConfig, layout: HeadLayout, head: Head,
                calibration: Calibration, threshold: float, threshold_note: str,
                training: dict, metrics_block: dict, version: str | None = None,
                spatial_fusion: SpatialFusion | None = None) -> Path:
    width = len(head.mean) // (len(layout.layers) * len(layout.tokens))
    export_head(folder / "head.onnx", layout, head.layers, head.mean, head.std, width)
    card = ModelCard(
        name=cfg.name, version=version or cfg.version, role="deep", onnx="head.onnx",
        input=InputSpec(size=cfg.input.size, scale=cfg.input.scale, center_y=cfg.input.center_y),
        calibration=calibration, threshold=threshold, threshold_note=threshold_note,
        backbone=cfg.backbone, spatial_fusion=spatial_fusion, training=training,
        metrics=metrics_block,
    )
    write_card(folder, card)
    return folder


def verify_export(folder: Path, crops: np.ndarray, expected_logits: np.ndarray) -> float:
    """The joined graph (backbone + head, as the agent runs it) against the head applied to
    the stored features of the same crops: max |difference| in logits."""
    from engines.registry import resolve_pack
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(resolve_pack(folder))
    got = np.concatenate([engine.infer(crops[i:i + 1]) for i in range(len(crops))])  # as the agent
    return float(np.max(np.abs(got - expected_logits)))


HEAD_GRID_LAYERS = (("layer12",), ("layer11", "layer12"), ("layer9", "layer10", "layer11", "layer12"),
                    ("layer7", "layer8", "layer9", "layer10", "layer11", "layer12"),
                    ("layer4", "layer6", "layer8", "layer10", "layer12"))
HEAD_GRID_TOKENS = (("cls",), ("cls", "mean"))
HEAD_GRID_C = (0.001, 0.01, 0.1)
HEAD_GRID_MLP = ((64, 1.0), (64, 10.0), (64, 30.0))  # (hidden units, alpha), on class tokens


def window_peak(logits: np.ndarray, looks: int = 5) -> float:
    """The highest mean logit over `looks` consecutive crops: what a track's deep score
    (the mean of its last `models.deep_window` looks) reaches at most on this file."""
    if len(logits) <= looks:
        return float(np.mean(logits))
    return float(np.convolve(logits, np.ones(looks) / looks, mode="valid").max())


def caught_beyond_reals(files: list[FileFeatures], val_real: set[str], cfg: DeepTrainConfig,
                        fold_heads: dict[str, Head], looks: int = 5) -> dict:
    """What an operator gets at a threshold no real video reaches: the fake videos whose window
    peak exceeds every real video's. Every file is scored by a head that never saw it: fakes
    by their family's left-out head, validation reals by the head trained on every training
    group, the training groups' reals by their cross-fitted head (cfg.real_folds)."""
    shipped = fit_head([f for f in files if f.entry.group not in val_real], cfg.head, cfg.seed)
    cross_fitted = real_cross_fit(files, val_real, cfg)
    files = measured(files)
    real_peaks = [window_peak(shipped.logits(f.x), looks) for f in files
                  if f.fold == "real" and f.entry.kind == "video" and f.entry.group in val_real]
    for head, groups in cross_fitted.values():
        real_peaks += [window_peak(head.logits(f.x), looks) for f in files
                       if f.fold == "real" and f.entry.kind == "video" and f.entry.group in groups]
    fake_peaks = [window_peak(fold_heads[f.fold].logits(f.x), looks) for f in files
                  if f.y and f.entry.kind == "video" and f.fold in fold_heads]
    top = max(real_peaks)
    return {"caught": int(sum(p > top for p in fake_peaks)), "fakes": len(fake_peaks),
            "reals": len(real_peaks)}


def head_grid() -> list[tuple[tuple[str, ...], tuple[str, ...], dict]]:
    """(layers, tokens, head settings) of every head --compare-heads measures."""
    grid = []
    for layers in HEAD_GRID_LAYERS:
        for tokens in HEAD_GRID_TOKENS:
            grid += [(layers, tokens, {"hidden": 0, "c": c}) for c in HEAD_GRID_C]
            if tokens == ("cls",) and len(layers) > 1:
                grid += [(layers, tokens, {"hidden": h, "alpha": a}) for h, a in HEAD_GRID_MLP]
    return grid


def compare_heads(entries, paths, layer_names, fold_of, val_real, cfg: DeepTrainConfig,
                  cache: Path, threads: int = 0) -> list[dict]:
    """Leave-one-family-out AUC of every head in the grid, and the fake videos caught beyond
    every real video (caught_beyond_reals), printed as a table."""
    rows = []
    folds = list(cfg.families)
    print("| layers | tokens | head | " + " | ".join(folds) + " | mean | fake videos beyond every real |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in folds) + " | --- | --- |")
    loaded: dict[tuple, list[FileFeatures]] = {}
    for layers, tokens, settings in head_grid():
        if (layers, tokens) not in loaded:
            files = training_files(entries, paths, cfg, cache, HeadLayout(layers, tokens),
                                   layer_names, fold_of, threads)
            loaded = {(layers, tokens): files}  # one layout in memory at a time
        files = loaded[(layers, tokens)]
        trial = cfg.model_copy(update={"head": cfg.head.model_copy(update={
            "layers": list(layers), "tokens": list(tokens), **settings})})
        figures, _, fold_heads = leave_one_out(files, val_real, trial)
        caught = caught_beyond_reals(files, val_real, trial, fold_heads)
        aucs = [figures[f]["auc"] for f in folds if f in figures]
        head = (f"MLP {settings['hidden']}, alpha {settings['alpha']:g}" if settings["hidden"]
                else f"linear, C {settings['c']:g}")
        rows.append({"layers": layers, "tokens": tokens, "head": head,
                     "auc": {f: figures[f]["auc"] for f in figures}, "mean": float(np.mean(aucs)),
                     "caught_beyond_reals": caught})
        print(f"| {layers[0]}-{layers[-1]} ({len(layers)}) | {'+'.join(tokens)} | {head} | "
              + " | ".join(f"{figures[f]['auc']:.3f}" for f in folds if f in figures)
              + f" | {np.mean(aucs):.3f} | {caught['caught']} of {caught['fakes']} "
              f"({caught['reals']} reals) |", flush=True)
    return rows


def write_eval_manifests(folder: Path, files: list[FileFeatures], val_real: set[str],
                         figures: dict, real_folds: dict[str, set[str]] | None = None) -> None:
    """Manifests for measuring through the agent (`verity eval --manifest`, absolute paths):
    <fold>/eval.csv holds the fold's fakes and the reals its figure was measured against;
    calibration.csv holds, for `verity calibrate` (only reals choose the threshold), every real
    video no head saw: the validation reals (shipped head) and, with `real_folds`, the training
    groups' real videos, each with the cross-fitted head that left its group out (`pack`
    column); and every fake video with the head that left its family out."""
    import csv

    def write(path: Path, rows: list[tuple[FileFeatures, str]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["path", "label", "kind", "method", "group", "pack"])
            for f, pack in rows:
                e = f.entry
                out.writerow([str(e.path), e.label, e.kind, e.method, e.group, pack])

    files = measured(files)
    for fold in figures:
        fold_files = [f for f in files if f.fold == fold]
        excluded = {f.entry.group for f in fold_files}
        kinds = {f.entry.kind for f in fold_files}
        reals = [f for f in files if f.fold == "real" and f.entry.kind in kinds
                 and (f.entry.group in val_real or f.entry.group in excluded)]
        write(folder / fold / "eval.csv", [(f, "") for f in fold_files + reals])
    fold_of_group = {g: name for name, groups in (real_folds or {}).items() for g in groups}
    rows = []
    for f in files:
        if f.entry.kind != "video" or f.fold == SELF_BLEND:
            continue
        if f.y and f.fold in figures:
            rows.append((f, f.fold))
        elif not f.y and f.entry.group in val_real:
            rows.append((f, ""))  # the shipped head (models.deep) never trained on these
        elif not f.y and f.entry.group in fold_of_group:
            rows.append((f, fold_of_group[f.entry.group]))
    write(folder / "calibration.csv", rows)


# -- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verity train deep", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"),
                        help="face media folder with manifest.csv (or VERITY_DATA_DIR)")
    parser.add_argument("--cache", default=".cache/faces", type=Path)
    parser.add_argument("--out", type=Path, help="pack folder (default engines/packs/<name>)")
    parser.add_argument("--fold-packs", type=Path,
                        help="also write each leave-one-family-out head as a pack under this "
                             "folder (<fold>/), to measure it through the agent with verity eval")
    parser.add_argument("--compare-heads", action="store_true",
                        help="print the leave-one-family-out table of a grid of heads (layers, "
                             "tokens, C) on the cached features instead of training; the config's "
                             "head was chosen from it")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        cfg = load_config(args.config)
    except ValidationError as exc:
        print(f"verity train deep: {args.config}: {config_error_text(exc)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"verity train deep: {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        entries = read_manifest(args.data)
    except (FileNotFoundError, ValueError) as exc:
        print(f"verity train deep: {exc}", file=sys.stderr)
        return 2
    from engines.backbone import BackboneError, locate
    try:
        locate(cfg.backbone)
    except BackboneError as exc:
        print(f"verity train deep: {exc}", file=sys.stderr)
        return 2

    from engines.train.deep_features import build_features

    started = time.time()
    paths = build_features(entries, cfg.as_cache_dict(), args.cache, threads=args.threads)
    layer_names = list(cfg.backbone.layers)
    layout = HeadLayout(tuple(cfg.head.layers), tuple(cfg.head.tokens))
    fold_of = {family: fold for fold, families in cfg.families.items() for family in families}
    files = training_files(entries, paths, cfg, args.cache, layout, layer_names, fold_of,
                           args.threads)
    val_real = validation_real_groups(entries, cfg.split)
    log.info("%d files with a face; %d validation real groups", len(files), len(val_real))
    if args.compare_heads:
        compare_heads(entries, paths, layer_names, fold_of, val_real, cfg, args.cache, args.threads)
        return 0

    figures, held_out, fold_heads = leave_one_out(files, val_real, cfg)
    beyond_reals = caught_beyond_reals(files, val_real, cfg, fold_heads) if cfg.real_folds >= 2 else None
    train = [f for f in files if f.entry.group not in val_real]
    head = fit_head(train, cfg.head, cfg.seed)
    val_reals = [f for f in measured(files) if f.fold == "real" and f.entry.group in val_real]
    real_logits = [head.logits(f.x) for f in val_reals]
    calibration = platt(real_logits, list(held_out.values()))
    calibration.fitted_on = (
        f"Platt scaling on frame logits: {len(val_reals)} validation real files (shipped head; "
        f"label 0) and {len(held_out)} fake files scored by the head that left their family out "
        "(label 1), each file weighted equally")
    fusion_data = spatial_fusion_data(entries, cfg, args.cache) if cfg.spatial_fusion else None
    spatial_fusion = None
    fold_fusions: dict[str, SpatialFusion] = {}
    if fusion_data is not None:
        fused_held = fused_leave_one_out(files, val_real, fold_heads, fusion_data, figures)
        head_scale = head_scales(head, train, fusion_data)
        fused_calibration = platt([fused_logits(head, f, fusion_data, head_scale) for f in val_reals],
                                  list(fused_held.values()))
        fused_calibration.fitted_on = (
            f"Platt scaling on fused frame logits: {len(val_reals)} validation real files "
            f"(shipped head; label 0) and {len(fused_held)} fake files fused with the head that "
            "left their family out (label 1), each file weighted equally")
        spatial_fusion = spatial_fusion_card(fusion_data, head_scale, fused_calibration)
        fold_fusions = {fold: spatial_fusion_card(
            fusion_data, (figures[fold]["fused"]["deep_scale"], figures[fold]["fused"]["spatial_scale"]),
            fused_calibration) for fold in fold_heads}

    def probability(z: np.ndarray) -> np.ndarray:
        return metrics.sigmoid(z / calibration.temperature + calibration.bias)

    real_frames = np.concatenate([probability(z) for z in real_logits])
    threshold = frame_threshold(real_frames, cfg.threshold_fpr)
    threshold_note = (f"Lowest probability >= 0.5 with at most {cfg.threshold_fpr:.0%} of "
                      f"{len(real_frames)} validation real crops at or above it; measured: "
                      f"{float(np.mean(real_frames >= threshold)):.4f}")
    held_out_rate = {fold: float(np.mean([np.mean(probability(held_out[f.entry.rel]) >= threshold)
                                          for f in measured(files) if f.fold == fold]))
                     for fold in figures}
    for fold, rate in held_out_rate.items():
        figures[fold]["fake_crops_at_threshold"] = rate

    train_counts = Counter((f.fold, f.entry.kind) for f in measured(train))
    training = {
        "recipe": (f"frozen backbone ({cfg.backbone.name}); "
                   + (f"one hidden ReLU layer of {cfg.head.hidden} units (L2 alpha {cfg.head.alpha})"
                      if cfg.head.hidden else f"logistic regression (L2, C={cfg.head.c})") + " "
                   f"on standardised {'+'.join(cfg.head.tokens)} tokens of "
                   f"{', '.join(cfg.head.layers)}; rows weighted per file, fake family and real "
                   "kind; real fakes of every family in training"
                   + ("; one degraded copy (downscaled 1.5-3.5x, JPEG 35-80) of every crop, both "
                      "classes" if cfg.degraded_copies else "")),
        "config": str(args.config),
        "config_values": json.loads(cfg.model_dump_json()),
        "data": {"files": len(measured(train)), "by_fold_and_kind": {f"{k[0]}/{k[1]}": v
                                                          for k, v in sorted(train_counts.items())},
                 "validation_real_groups": len(val_real),
                 "validation_real_files": len(val_reals)},
        "split": (f"by group, seed {cfg.split.seed}: {cfg.split.val_fraction:.0%} of real-only groups "
                  "-> validation; every other group trains (each fold's figure from a head trained "
                  "without that fold's groups)"),
        "seed": cfg.seed,
        "python": platform.python_version(),
    }
    metrics_block = {
        "leave_one_family_out": {
            "protocol": ("per fold: a head trained without every group holding that fold's fakes; "
                         "file score = mean crop logit; AUC against the validation reals and the "
                         "left-out groups' reals of the same kind; "
                         f"{cfg.faces.frames_per_video} crops per video, stills at "
                         f"{cfg.faces.still_interocular:g} px eye distance, JPEG "
                         f"{cfg.faces.still_jpeg_quality}, both classes"),
            "folds": figures,
        },
    }
    if beyond_reals is not None:
        metrics_block["beyond_every_real"] = {
            **beyond_reals, "looks": 5,
            "protocol": ("fake videos whose highest mean logit over 5 consecutive crops (a "
                         "track's deep score over 5 looks) exceeds that of every real video; "
                         "fakes scored by the head that left their family out, validation reals "
                         "by the shipped head, the training groups' reals by the cross-fitted "
                         f"head that left their group out ({cfg.real_folds} folds)")}
    out = args.out or PACKS_DIR / cfg.name
    export_pack(out, cfg, layout, head, calibration, threshold, threshold_note, training,
                metrics_block, spatial_fusion=spatial_fusion)
    # The exported graph, as the agent runs it, against the head on stored features.
    from engines.data.cache import cache_file, load_cached
    from engines.train.deep_features import cache_spec

    sample = next(f for f in val_reals if f.entry.kind == "video")
    crops = load_cached(cache_file(args.cache, cache_spec(cfg.as_cache_dict()), sample.entry))["crops"]
    max_diff = verify_export(out, crops[:4], head.logits(sample.x[:4]))
    log.info("export check: max |graph - features| logit difference %.4f", max_diff)
    card_path = out / "card.json"
    card = json.loads(card_path.read_text())
    card["metrics"]["export_check"] = {"max_abs_logit_diff": max_diff, "crops": 4}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    if args.fold_packs:
        for fold, fold_head in fold_heads.items():
            export_pack(args.fold_packs / fold, cfg, layout, fold_head, calibration, threshold,
                        f"the shipped head's threshold ({threshold:.4f}), for comparison",
                        {**training, "left_out": fold}, {"leave_one_family_out": figures[fold]},
                        version=f"{cfg.version}-without-{fold}",
                        spatial_fusion=fold_fusions.get(fold))
        real_folds = real_cross_fit(files, val_real, cfg)
        for name, (fold_head, groups) in real_folds.items():
            fold_fusion = None
            if spatial_fusion is not None and fusion_data is not None:
                fold_train = [f for f in files
                              if f.entry.group not in groups and f.entry.group not in val_real]
                fold_fusion = spatial_fusion_card(
                    fusion_data, head_scales(fold_head, fold_train, fusion_data),
                    spatial_fusion.calibration)
            export_pack(args.fold_packs / name, cfg, layout, fold_head, calibration, threshold,
                        f"the shipped head's threshold ({threshold:.4f}), for comparison",
                        {**training, "left_out_groups": sorted(groups)}, {},
                        version=f"{cfg.version}-{name}", spatial_fusion=fold_fusion)
        write_eval_manifests(args.fold_packs, files, val_real, figures,
                             {name: groups for name, (_, groups) in real_folds.items()})
        log.info("fold packs and their eval manifests in %s", args.fold_packs)
    from engines.train.deep_card import write_deep_model_card

    write_deep_model_card(out, args.config)
    log.info("pack %s written in %.0f s: %s", cfg.name, time.time() - started,
             ", ".join(f"{k} {v['auc']:.3f}" + (f" (fused {v['fused']['auc']:.3f})" if "fused" in v else "")
                       for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
