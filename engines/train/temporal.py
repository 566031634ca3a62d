"""`verity train temporal`: the window model, trained on real videos with self-blended windows.

    python -m engines.train.temporal --config configs/train/temporal-sbi.yaml --data DIR \
        [--work runs/temporal-sbi] [--pack-out engines/packs/temporal-sbi] \
        [--spatial-pack spatial-sbi]

Steps: read the manifest, split by group with the spatial model's split settings (every group
with a fake goes to validation), build or reuse the face-window cache (engines.data.clips:
the agent's analysis rate and tracker), train on pairs (each real window and its own
self-blended window, augmented alike), export ONNX with preprocessing inside, score the
validation windows with ONNX Runtime, score the same frames with the spatial pack, fit the
temporal calibration and the spatial + temporal fusion on validation reals and their
self-blends (never on real fakes), measure window- and video-level AUC per method family for
temporal, spatial and fused scores, write the pack (model.onnx, card.json, MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from engines.fusion import gated_max
from engines.registry import FUSION_RULES, PackError
from engines.train import run_setup

log = logging.getLogger("verity.train.temporal")

DEFAULT_CONFIG = Path("configs/train/temporal-sbi.yaml")
DEFAULT_WORK = Path("runs/temporal-sbi")
DEFAULT_CLIP_CACHE = Path(".cache/clips")
FAMILIES = ("talking_head", "lip_sync", "talking_head_synthesis")


class RefitError(ValueError):
    """--refit-fusion names a pack whose network this config did not train."""


def load_config(path: Path) -> dict:
    """The config as a mapping, checked against its schema (engines.train.recipes) first."""
    from engines.train.recipes import TemporalRecipe

    return run_setup.load_config(
        path, ("split", "input", "clips", "fakes", "sbi", "augment", "model", "train", "eval"),
        TemporalRecipe)


def target_spec(cfg: dict):
    from engines.faces.align import AlignSpec

    inp = cfg["input"]
    return AlignSpec(int(inp.get("size", 112)), float(inp.get("scale", 3.0)),
                     float(inp.get("center_y", 0.55))), int(inp.get("frames", 8))


# ------------------------------------------------------------------------------ training
def train_model(cfg: dict, bank, target, loose, frames: int, work_dir: Path, monitor=None):
    """Train on the bank's real windows; returns (module in eval mode, history, seconds)."""
    import torch
    from torch.utils.data import DataLoader

    from engines.models.temporal import TemporalPreprocess, build_temporal_model
    from engines.synthesis.sbi import SBIConfig
    from engines.train.augment import AugmentConfig
    from engines.train.sampling import PlanSampler, worker_init
    from engines.train.temporal_data import (
        WindowFakeConfig,
        WindowMaker,
        WindowPairDataset,
        collate_windows,
    )

    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    run_setup.seed_everything(seed, int(tcfg.get("threads", 1)))
    net = build_temporal_model(cfg["model"], frames)
    pre = TemporalPreprocess()
    maker = WindowMaker(loose, target, SBIConfig.from_dict(cfg["sbi"]),
                        AugmentConfig.from_dict(cfg["augment"]),
                        WindowFakeConfig.from_dict(cfg["fakes"]))
    dataset = WindowPairDataset(bank, maker)
    weights = bank.sample_weights(float(tcfg.get("file_balance_power", 0.5)))
    batch_pairs = int(tcfg.get("batch_pairs", 12))
    steps = int(tcfg.get("steps_per_epoch", 0)) or max(1, len(bank) // batch_pairs)
    epochs = int(tcfg.get("epochs", 10))
    total = steps * epochs
    warmup = int(float(tcfg.get("warmup_epochs", 1)) * steps)
    opt = run_setup.adamw(net, tcfg)
    lr_at = run_setup.warmup_cosine(float(tcfg.get("lr", 3e-3)), warmup, total)

    aux_weight = float(tcfg.get("aux_weight", 0.0))
    # bfloat16 autocast: the convolutions run on the CPU's bf16 units where it has them.
    bf16 = bool(tcfg.get("bf16", False))
    F = torch.nn.functional
    workers = int(tcfg.get("workers", 1))
    sampler = PlanSampler(weights, steps * batch_pairs, seed, salt=11)  # 1.x models' plans
    loader = DataLoader(
        dataset, batch_size=batch_pairs, sampler=sampler, num_workers=workers,
        collate_fn=collate_windows, worker_init_fn=worker_init if workers else None,
        drop_last=True, prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0,
        multiprocessing_context="spawn" if workers else None,
    )
    history, step = [], 0
    log_path = work_dir / "train_log.jsonl"
    log_path.write_text("")
    start = time.time()
    for epoch in range(epochs):
        net.train()
        sampler.set_epoch(epoch)
        losses, correct, seen = [], 0, 0
        t0 = time.time()
        for windows, labels, masks in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, aux = net.forward_aux(pre(windows))
            logits, aux = logits.float(), aux.float()
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            if aux_weight > 0:
                boundary = F.adaptive_avg_pool2d(4 * masks * (1 - masks), aux.shape[-2:])
                loss = loss + aux_weight * F.binary_cross_entropy_with_logits(aux, boundary)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            correct += int(((logits.detach() > 0).float() == labels).sum())
            seen += len(labels)
        record = {
            "epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
            "train_acc": round(correct / max(1, seen), 4), "lr": round(float(lr_at(step - 1)), 6),
            "epoch_s": round(time.time() - t0, 1), "elapsed_s": round(time.time() - start, 1),
        }
        if monitor is not None:
            net.eval()
            record.update(monitor(net))
        history.append(record)
        with open(log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        log.info("epoch %s", json.dumps(record))
    net.eval()
    return net, history, time.time() - start


def train_or_reuse(cfg: dict, bank, target, loose, frames: int, work_dir: Path, monitor=None):
    """Train, or load the checkpoint of an identical earlier run (same config and files)."""
    import torch

    from engines.models.temporal import build_temporal_model

    key = run_setup.digest([sorted(bank.files), {k: v for k, v in cfg.items()
                                        if k not in ("eval", "fusion", "export", "name", "version")}])
    ckpt = work_dir / f"model-{key}.pt"
    if ckpt.is_file():
        saved = torch.load(ckpt, map_location="cpu")
        net = build_temporal_model(cfg["model"], frames)
        net.load_state_dict(saved["state_dict"])
        net.eval()
        log.info("training: reused %s", ckpt.name)
        return net, saved["history"], saved["seconds"]
    net, history, seconds = train_model(cfg, bank, target, loose, frames, work_dir, monitor)
    torch.save({"state_dict": net.state_dict(), "history": history, "seconds": seconds}, ckpt)
    return net, history, seconds


# ------------------------------------------------------------------------------ evaluation
def sbi_windows(bank, windows: list[int], seed: int, sbi, fakes, variant: str | None = None):
    """Seeded self-blended copies of the given windows (loose crops) and their variants."""
    from engines.train.temporal_data import blend_window

    rng = np.random.default_rng([seed, 99])
    out, names = [], []
    for w in windows:
        crops, mesh = bank.window(w)
        fake, _, info = blend_window(crops, mesh, rng, sbi, fakes, variant)
        out.append(fake)
        names.append(info["variant"])
    return out, names


def spatial_window_logits(session, loose, spatial_spec, windows: list[np.ndarray],
                          batch: int = 64) -> np.ndarray:
    """The spatial pack's logit for every frame of each window (spatial AlignSpec): [N, T]."""
    from engines.train.temporal_data import centre_window

    if not windows:
        return np.zeros((0, 0), np.float32)
    t = len(windows[0])
    frames = np.concatenate([centre_window(w, loose, spatial_spec) for w in windows])
    logits = np.concatenate([
        session.run(None, {"crops": np.ascontiguousarray(frames[i : i + batch])})[0].reshape(-1)
        for i in range(0, len(frames), batch)
    ])
    return logits.reshape(-1, t)


def temporal_window_logits(session, loose, target, windows: list[np.ndarray],
                           batch: int = 16) -> np.ndarray:
    from engines.train.temporal_data import centre_window
    from engines.train.temporal_export import onnx_window_logits

    if not windows:
        return np.zeros(0, np.float32)
    out = []
    for i in range(0, len(windows), batch):
        chunk = np.stack([centre_window(w, loose, target) for w in windows[i : i + batch]])
        out.append(onnx_window_logits(session, chunk, batch))
    return np.concatenate(out)


def fit_fusion(real: np.ndarray, fake: np.ndarray) -> tuple[float, float, float]:
    """Logistic regression of label on [spatial, temporal] logits: (w_s, w_t, b)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([real, fake]).astype(np.float64)
    y = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
    lr = LogisticRegression(C=1e4, max_iter=5000).fit(x, y)
    return float(lr.coef_[0, 0]), float(lr.coef_[0, 1]), float(lr.intercept_[0])


def fusion_rule_of(cfg: dict) -> str:
    """The config's fusion.rule (default logistic, as packs before rules), or a clear error."""
    rule = str((cfg.get("fusion") or {}).get("rule", "logistic"))
    if rule not in FUSION_RULES:
        raise ValueError(f"fusion.rule: {rule!r} is not one of {', '.join(FUSION_RULES)}")
    return rule


def export_options(cfg: dict) -> tuple[int, bool]:
    """The config's export.opset and export.flip_average, or a clear error (a quoted "false"
    must not silently turn the mirror average on)."""
    block = cfg.get("export") or {}
    unknown = sorted(set(block) - {"opset", "flip_average"})
    if unknown:
        raise ValueError(f"export: unknown keys {unknown} (known: opset, flip_average)")
    opset, flip = block.get("opset", 17), block.get("flip_average", False)
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 13:
        raise ValueError(f"export.opset: {opset!r} is not an ONNX opset number >= 13")
    if not isinstance(flip, bool):
        raise ValueError(f"export.flip_average: {flip!r} is not true or false")
    return opset, flip


def check_config(cfg: dict) -> None:
    """Every setting that would otherwise fail inside the run, checked before any work
    (ValueError naming the setting)."""
    from engines.synthesis.sbi import SBIConfig
    from engines.train.augment import AugmentConfig
    from engines.train.temporal_data import WindowFakeConfig
    from engines.train.temporal_ensemble import config_seeds

    fusion_rule_of(cfg)
    export_options(cfg)
    config_seeds(cfg)
    WindowFakeConfig.from_dict(cfg["fakes"])
    SBIConfig.from_dict(cfg["sbi"])
    AugmentConfig.from_dict(cfg.get("augment"))


def recipe_text(cfg: dict, fakes_cfg) -> str:
    """The card's one-paragraph training recipe (also what a reused network is checked by)."""
    from engines.train.augment import h264_recipe_text

    return (
        "Self-blended windows on real videos only: each real window of T aligned crops "
        "paired with its own blend (one SBIParams per window with per-frame mask jitter; "
        "variants: " + ", ".join(f"{k} {v}" for k, v in fakes_cfg.variants.items()) +
        "), one crop jitter per window plus per-frame tracking jitter, colour / downscale "
        "/ blur / noise / JPEG drawn once per window and shared by the pair"
        + h264_recipe_text(cfg.get("augment") or {}, "windows", "one H.264 clip")
        + ", random time reversal; BCE on one logit"
        + (f" plus {float(cfg['train'].get('aux_weight', 0))} x BCE on a training-only "
           "per-frame blending-boundary map (4M(1-M)) from the stride-8 features"
           if float(cfg["train"].get("aux_weight", 0)) > 0 else "")
        + f"; AdamW, cosine LR, {cfg['train'].get('epochs')} epochs of "
        f"{cfg['train'].get('steps_per_epoch')} steps x {cfg['train'].get('batch_pairs')} "
        "pairs."
    )


def _plain(value):
    """JSON-shaped (tuples as lists), so a config and a card's copy of it compare equal."""
    return json.loads(json.dumps(value))


def _defaults(config) -> dict:
    """A dataclass config's default values."""
    from dataclasses import MISSING, fields

    return {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)
            for f in fields(config) if f.default is not MISSING or f.default_factory is not MISSING}


def reuse_mismatches(training: dict, cfg: dict, fakes_cfg, clip_digest: str,
                     frames: int, target, seeds: list[int] | None = None) -> list[str]:
    """What differs between a pack's recorded training and this config, for `--refit-fusion`:
    its network may stand in for this config's only when nothing that shaped it differs.
    seeds: the seeds the config trains (default: its ensemble_seeds or seed)."""
    from engines.train.temporal_ensemble import config_seeds, recorded_seeds

    out = []
    model = {k: v for k, v in (training.get("model") or {}).items()
             if k not in ("input_size", "frames", "macs", "params")}
    checks = {
        "model": (model, cfg["model"]),
        "sbi": (training.get("sbi"), cfg["sbi"]),
        "augment": (training.get("augment"), cfg["augment"]),
        # A field added after the pack was trained counts as its default (what ran then).
        "fakes": ({**_defaults(fakes_cfg), **(training.get("fakes") or {})}, fakes_cfg.__dict__),
        "clips (window cache)": ((training.get("clips") or {}).get("cache_spec"), clip_digest),
        "input.frames": ((training.get("model") or {}).get("frames"), frames),
        "input.size": ((training.get("model") or {}).get("input_size"), target.size),
        "seed": (recorded_seeds(training), seeds if seeds is not None else config_seeds(cfg)),
        "train (recipe)": (training.get("recipe"), recipe_text(cfg, fakes_cfg)),
    }
    opset, flip = export_options(cfg)
    checks["export"] = ({k: (training.get("export") or {}).get(k)
                         for k in ("opset", "flip_average")},
                        {"opset": opset, "flip_average": flip})
    for name, (recorded, wanted) in checks.items():
        if _plain(recorded) != _plain(wanted):
            out.append(name)
    return out


def fused_probability(rule: str, spatial_logits: np.ndarray, temporal_logit: np.ndarray,
                      spatial_cal: tuple[float, float], temporal_cal: tuple[float, float],
                      weights: tuple[float, float, float], spatial_gate: float = 0.0) -> np.ndarray:
    """The agent's fusion (agent.scoring.fusion.Fusion) per window, as the mean of what the
    agent gives the window's frames. spatial_logits: [N, T] per frame; temporal_logit: [N];
    *_cal: (temperature, bias) of each card's calibration; spatial_gate: gated_max's gate."""
    from engines import metrics
    from engines.train.evaluate import calibrate

    spatial_logits = np.asarray(spatial_logits, np.float64)
    if rule in ("max", "gated_max"):  # each frame against the window's temporal probability
        p_s = calibrate(spatial_logits, *spatial_cal)
        p_t = calibrate(np.asarray(temporal_logit, np.float64), *temporal_cal)
        return gated_max(p_s, p_t[:, None], spatial_gate if rule == "gated_max" else 0.0).mean(1)
    w_s, w_t, bias = weights
    return metrics.sigmoid(w_s * spatial_logits.mean(1) + w_t * np.asarray(temporal_logit) + bias)


def fusion_entry(rule: str, weights: tuple[float, float, float], spatial_id: str,
                 spatial_sha256: str, frames: int, *, n_real: int, n_sbi: int,
                 threshold: float, max_fpr: float, compared: dict,
                 spatial_gate: float | None = None) -> dict:
    """The `fusion` entry of the temporal card (card.json -> training.fusion).

    `max` takes, per frame, the larger of the frame's calibrated spatial probability and the
    window's calibrated temporal one; `gated_max` the same, counting the spatial probability
    only where it reaches `spatial_gate` (the spatial card's threshold); `logistic` the
    sigmoid of a weighted sum of the mean spatial logit over the window and the temporal
    logit (weights fitted on self-blends)."""
    w_s, w_t, bias = weights
    entry = {
        "rule": rule,
        "spatial_model": spatial_id,
        "spatial_onnx_sha256": spatial_sha256,
        "inputs": {
            "spatial": f"mean of {spatial_id}'s raw logits over the window's {frames} frames "
                       "(each frame cropped with the spatial pack's own AlignSpec)",
            "temporal": "this pack's raw logit for the window",
        },
        "threshold": round(float(threshold), 6),
        "threshold_note": f"fused probability: at most {max_fpr:.0%} of validation real "
                          "windows at or above it",
        "compared": compared,
    }
    if rule in ("max", "gated_max"):
        entry["inputs"]["spatial"] = (f"{spatial_id}'s raw logit for the frame (its own "
                                      "AlignSpec crop); on this card's windows, every frame's")
        entry["inputs"]["temporal"] = "this pack's raw logit for the track's latest window"
        entry["output"] = ("per frame: probability = max(spatial card's calibration of "
                           "spatial, this card's calibration of temporal); a window's score on "
                           "this card is the mean over its frames")
        entry["fitted_on"] = ("nothing beyond the two calibrations (each Platt scaling on "
                              "validation reals and their self-blends; no real fake used)")
        if rule == "gated_max":
            if spatial_gate is None:
                raise ValueError("gated_max needs the spatial card's threshold as spatial_gate")
            entry["spatial_gate"] = round(float(spatial_gate), 6)
            entry["spatial_gate_note"] = (f"{spatial_id}'s own threshold (its card's "
                                          "`threshold`): the spatial probability counts only "
                                          "at or above it")
            entry["output"] = ("per frame: probability = max(spatial if spatial >= spatial_gate "
                               "else 0, temporal), each by its card's calibration; a window's "
                               "score on this card is the mean over its frames")
            entry["fitted_on"] += "; the gate is the spatial card's threshold, not fitted here"
    else:
        entry["weights"] = {"spatial": round(float(w_s), 6), "temporal": round(float(w_t), 6)}
        entry["bias"] = round(float(bias), 6)
        entry["output"] = ("fused_logit = w_s * spatial + w_t * temporal + bias; "
                           "probability = sigmoid(fused_logit)")
        entry["fitted_on"] = (
            f"logistic regression on {n_real} validation real windows (label 0) and {n_sbi} "
            "self-blended copies of the same windows (label 1, seeded, window variants as in "
            "training); no real fake was used"
        )
    return entry


def family_metrics(labels, methods, files, scores: dict[str, np.ndarray]) -> dict:
    """Window- and video-level AUC/AP/EER per method family and method, for each score set.

    Each fake subset is compared against every validation real window (video); a video's
    score is the mean of its window scores."""
    from engines import metrics
    from engines.manifest import method_family

    labels = np.asarray(labels)
    methods = np.asarray(methods)
    files = np.asarray(files)
    fake = labels == "fake"
    fams = np.array([method_family(m) for m in methods])
    video_keys = list(dict.fromkeys(files.tolist()))
    vidx = {k: i for i, k in enumerate(video_keys)}
    inv = np.array([vidx[f] for f in files])
    v_fake = np.zeros(len(video_keys), bool)
    v_fam = np.empty(len(video_keys), object)
    v_meth = np.empty(len(video_keys), object)
    v_fake[inv] = fake
    v_fam[inv] = fams
    v_meth[inv] = methods

    def one(select_w, select_v, s):
        sw = np.asarray(s, np.float64)
        sv = np.bincount(inv, weights=sw, minlength=len(video_keys)) / np.bincount(
            inv, minlength=len(video_keys))
        mw = (~fake) | select_w
        mv = (~v_fake) | select_v
        res = {}
        for level, m, y, x in (("window", mw, fake[mw], sw[mw]), ("video", mv, v_fake[mv], sv[mv])):
            res[level] = {
                "auc": _r(metrics.auc(y, x)), "ap": _r(metrics.average_precision(y, x)),
                "eer": _r(metrics.eer(y, x)), "n_fake": int(y.sum()), "n_real": int((~y).sum()),
            }
        return res

    out: dict = {"family": {}, "method": {}, "all_fakes": {}}
    for name, s in scores.items():
        out["all_fakes"][name] = one(fake, v_fake, s)
    for fam in sorted(set(fams[fake])):
        out["family"][fam] = {n: one(fake & (fams == fam), v_fake & (v_fam == fam), s)
                              for n, s in scores.items()}
    for meth in sorted(set(methods[fake])):
        out["method"][meth] = {n: one(fake & (methods == meth), v_fake & (v_meth == meth), s)
                               for n, s in scores.items()}
    return out


def _r(x: float):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), 4)


# ------------------------------------------------------------------------------ run
def run(config_path: Path, data_dir: Path | None, work_dir: Path = DEFAULT_WORK,
        pack_dir: Path | None = None, *, cache_dir: Path | None = None,
        spatial_pack: str | Path = "spatial-sbi", refit: str | Path | None = None) -> Path:
    """Train, export, validate, fit the fusion and write a pack. Returns the pack folder.

    pack_dir: where the pack goes (default work_dir / "pack"); cache_dir: the face-window
    cache (default $VERITY_CLIP_CACHE_DIR or .cache/clips); spatial_pack: the spatial model
    the fusion is fitted with (shipped name or folder); refit: a temporal pack trained with
    this config whose network is kept (no training, no export): only the calibration, the
    fusion and the figures are redone, e.g. for a new spatial pack.
    """
    import torch

    from engines import metrics
    from engines.data.clips import build_clip_cache, spec_from_config
    from engines.manifest import read_manifest
    from engines.models.temporal import TemporalEnsemble, count_temporal_macs
    from engines.registry import Calibration, InputSpec, ModelCard, resolve_pack, write_card
    from engines.runtime.onnx_prep import tensorrt_compat_issues
    from engines.runtime.sessions import cpu_session
    from engines.synthesis.sbi import SBIConfig
    from engines.train.evaluate import calibrate, fit_calibration, pick_threshold
    from engines.train.temporal_data import WindowBank, WindowFakeConfig, centre_window
    from engines.train.temporal_ensemble import config_seeds
    from engines.train.temporal_export import (
        benchmark_temporal,
        export_temporal_onnx,
        verify_temporal_export,
    )

    wall_start = time.time()
    config_path = Path(config_path)
    cfg = load_config(config_path)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    pack_dir = Path(pack_dir) if pack_dir else work_dir / "pack"
    cache_dir = Path(cache_dir or os.environ.get("VERITY_CLIP_CACHE_DIR") or DEFAULT_CLIP_CACHE)
    seed = int(cfg.get("seed", 0))
    target, frames = target_spec(cfg)
    clip_spec = spec_from_config(cfg)
    loose = clip_spec.loose
    ecfg = cfg["eval"]
    sbi_cfg = SBIConfig.from_dict(cfg["sbi"])
    fakes_cfg = WindowFakeConfig.from_dict(cfg["fakes"])
    fusion_rule = fusion_rule_of(cfg)  # checked before the hour of training, not after
    opset, flip_average = export_options(cfg)
    seeds = config_seeds(cfg)
    reused = None
    if refit is not None:
        reused = resolve_pack(refit)
        if reused.card.role != "temporal":
            raise RefitError(f"--refit-fusion {refit}: {reused.id} is not a temporal pack")
        differs = reuse_mismatches(reused.card.training, cfg, fakes_cfg, clip_spec.digest(),
                                   frames, target)
        if differs:
            raise RefitError(
                f"--refit-fusion {refit}: {reused.id} was not trained with "
                f"{config_path.name} ({', '.join(differs)} differ); train it instead")
        reused_onnx = reused.onnx_path.read_bytes()  # read now: pack_dir may be its folder

    # 1. Manifest and split (the spatial model's split settings).
    entries = read_manifest(data_dir)
    split_cfg = cfg["split"]
    split = run_setup.split_and_record(entries, split_cfg, work_dir)
    split_summary = split.summary()

    # 2. Face-window cache (videos only).
    t = time.time()
    cached = build_clip_cache(entries, clip_spec, cache_dir,
                              workers=int(cfg["clips"].get("workers", 1)))
    cache_s = time.time() - t
    train_paths = [cached[e.rel] for e in split.train
                   if e.rel in cached and e.kind == "video" and not e.is_fake]
    val_paths = [cached[e.rel] for e in split.val if e.rel in cached and e.kind == "video"]
    mesh_sigma = fakes_cfg.mesh_smooth
    bank_key = run_setup.digest([[str(p.name) for p in train_paths], frames, mesh_sigma, clip_spec.digest()])
    train_bank = WindowBank.load(train_paths, frames, store=work_dir / f"bank-{bank_key}",
                                 require_mesh=True, mesh_smooth=mesh_sigma)
    per_video = int(ecfg.get("windows_per_video", 12))
    val_bank = WindowBank.load(val_paths, frames, per_file=per_video, mesh_smooth=mesh_sigma)
    log.info("windows: train %s, val %s", train_bank.summary(), val_bank.summary())
    val_file_of = np.array([val_bank.window_file(w) for w in range(len(val_bank))])
    val_labels = [val_bank.labels[f] for f in val_file_of]
    val_methods = [val_bank.methods[f] for f in val_file_of]
    val_files = [val_bank.files[f] for f in val_file_of]
    real_windows = [w for w, lab in enumerate(val_labels) if lab == "real"]
    has_mesh = [w for w in real_windows
                if np.isfinite(val_bank.window(w)[1]).all()]

    # Validation reals and their self-blends, made once (seeded): monitor, calibration, fusion.
    sbi_val, sbi_variants = sbi_windows(val_bank, has_mesh, seed + 2, sbi_cfg, fakes_cfg)
    real_val = [val_bank.window(w)[0] for w in has_mesh]

    def monitor(net):
        from engines.train.temporal_export import torch_window_logits

        r = torch_window_logits(net, np.stack([centre_window(w, loose, target) for w in real_val]))
        f = torch_window_logits(net, np.stack([centre_window(w, loose, target) for w in sbi_val]))
        y = np.r_[np.zeros(len(r)), np.ones(len(f))]
        return {"val_sbi_auc": round(metrics.auc(y, np.r_[r, f]), 4),
                "val_real_mean_p": round(float(metrics.sigmoid(r).mean()), 4)}

    # 3. Train (or keep the network of the pack being refitted).
    if reused is None:
        nets, history, train_s, history_by_seed = [], [], 0.0, {}
        single = {k: v for k, v in cfg.items() if k != "ensemble_seeds"}
        for member_seed in seeds:  # one network per seed; each keeps its own checkpoint
            member, member_history, seconds = train_or_reuse(
                {**single, "seed": member_seed}, train_bank, target, loose, frames, work_dir,
                monitor)
            nets.append(member)
            history = history or member_history  # the first seed's log goes on the card
            history_by_seed[str(member_seed)] = member_history
            train_s += seconds
        net = nets[0] if len(nets) == 1 else TemporalEnsemble(nets)
        torch.save(net.state_dict(), work_dir / "model.pt")
    else:
        net = None
        history = reused.card.training["epochs"]
        train_s = float(reused.card.training["wall_time_s"]["train"])
        log.info("training: kept the network of %s (--refit-fusion)", reused.id)

    # 4. Export and verify.
    if pack_dir.exists():
        for name in ("model.onnx", "card.json", "MODEL_CARD.md"):
            (pack_dir / name).unlink(missing_ok=True)
    pack_dir.mkdir(parents=True, exist_ok=True)
    if reused is None:
        onnx_path = export_temporal_onnx(net, pack_dir / "model.onnx", frames, target.size,
                                         opset=opset, flip_average=flip_average)
        check = np.stack([centre_window(val_bank.window(w)[0], loose, target)
                          for w in range(min(8, len(val_bank)))])
        max_diff = verify_temporal_export(net, onnx_path, check, flip_average=flip_average)
    else:
        onnx_path = pack_dir / "model.onnx"
        onnx_path.write_bytes(reused_onnx)
        max_diff = float(reused.card.training["export_max_abs_diff"])
    trt_issues = tensorrt_compat_issues(onnx_path)
    log.info("export: %s (%d bytes), max |torch - onnx| = %.2e, TensorRT issues: %s",
             onnx_path, onnx_path.stat().st_size, max_diff, trt_issues)
    session = cpu_session(onnx_path)

    # 5. Scores: temporal (ONNX Runtime) and spatial (the spatial pack) on the same windows.
    spack = resolve_pack(spatial_pack)
    if spack.card.role != "spatial":
        raise ValueError(f"{spack.id} is not a spatial pack")
    s_session = cpu_session(spack.onnx_path)
    s_spec = spack.card.input.align
    val_windows = [val_bank.window(w)[0] for w in range(len(val_bank))]
    t_val = temporal_window_logits(session, loose, target, val_windows)
    s_val = spatial_window_logits(s_session, loose, s_spec, val_windows)
    real_pos = {w: i for i, w in enumerate(range(len(val_bank)))}
    t_real = t_val[[real_pos[w] for w in has_mesh]]
    s_real = s_val[[real_pos[w] for w in has_mesh]]
    t_sbi = temporal_window_logits(session, loose, target, sbi_val)
    s_sbi = spatial_window_logits(s_session, loose, s_spec, sbi_val)

    # 6. Calibration, threshold, fusion: validation reals vs their self-blends only.
    temperature, bias = fit_calibration(t_real, t_sbi)
    weights = fit_fusion(np.c_[s_real.mean(1), t_real], np.c_[s_sbi.mean(1), t_sbi])
    s_cal = (spack.card.calibration.temperature, spack.card.calibration.bias)

    spatial_gate = float(spack.card.threshold)

    def fuse(rule, s_frames, t_logit):
        return fused_probability(rule, s_frames, t_logit, s_cal, (temperature, bias), weights,
                                 spatial_gate)

    t_prob = calibrate(t_val, temperature, bias)
    s_prob = calibrate(s_val.mean(1), *s_cal)  # a window's spatial score: its mean logit
    f_prob = fuse(fusion_rule, s_val, t_val)
    fused_val = np.log(np.clip(f_prob, 1e-7, 1 - 1e-7) / np.clip(1 - f_prob, 1e-7, 1))
    is_real = np.array([lab == "real" for lab in val_labels])
    max_fpr = float(ecfg.get("calibration_fpr", 0.01))
    threshold = pick_threshold(t_prob[is_real], max_fpr)
    fused_threshold = pick_threshold(f_prob[is_real], max_fpr)

    results = family_metrics(val_labels, val_methods, val_files,
                             {"temporal": t_prob, "spatial": s_prob, "fused": f_prob})
    y_sbi = np.r_[np.zeros(len(t_real)), np.ones(len(t_sbi))]
    # Every rule, measured the same way, so the card shows what the chosen one traded.
    compared = {}
    rule_fakes = family_metrics(val_labels, val_methods, val_files,
                                {r: fuse(r, s_val, t_val) for r in FUSION_RULES})["all_fakes"]
    sbi_scores = {r: np.r_[fuse(r, s_real, t_real), fuse(r, s_sbi, t_sbi)] for r in FUSION_RULES}
    for r in FUSION_RULES:
        compared[r] = {
            "sbi_window_auc": _r(metrics.auc(y_sbi, sbi_scores[r])),
            "fake_video_auc": rule_fakes[r]["video"]["auc"],
        }
        if r != fusion_rule:  # is another rule better on the self-blends beyond chance?
            low, high = metrics.auc_difference_interval(y_sbi, sbi_scores[r],
                                                        sbi_scores[fusion_rule])
            compared[r]["sbi_auc_minus_chosen_ci95"] = [_r(low), _r(high)]
    sbi_res = {}
    fused_real = fuse(fusion_rule, s_real, t_real)
    fused_sbi = fuse(fusion_rule, s_sbi, t_sbi)
    variants = np.array(sbi_variants)
    for name, r, f in (("temporal", t_real, t_sbi), ("spatial", s_real.mean(1), s_sbi.mean(1)),
                       ("fused", fused_real, fused_sbi)):
        sbi_res[name] = {"all": _r(metrics.auc(y_sbi, np.r_[r, f]))}
        for v in sorted(set(sbi_variants)):
            sel = f[variants == v]
            sbi_res[name][v] = _r(metrics.auc(np.r_[np.zeros(len(r)), np.ones(len(sel))],
                                              np.r_[r, sel]))
    results["sbi_of_val_reals"] = {
        "auc": sbi_res, "n_real": len(t_real), "n_sbi": len(t_sbi),
        "variants": {v: int((variants == v).sum()) for v in sorted(set(sbi_variants))},
        "note": "in-sample for the fusion and the calibration (both fitted on these windows)",
    }
    results["real_fpr_at_threshold"] = {
        "temporal_windows": _r(float((t_prob[is_real] >= threshold).mean())),
        "fused_windows": _r(float((f_prob[is_real] >= fused_threshold).mean())),
    }
    np.savez_compressed(work_dir / "val_scores.npz", temporal=t_val, spatial=s_val.mean(1),
                        spatial_frames=s_val, s_real_frames=s_real, s_sbi_frames=s_sbi,
                        fused=fused_val, labels=np.array(val_labels),
                        methods=np.array(val_methods), files=np.array(val_files),
                        start=val_bank.starts, t_real=t_real, t_sbi=t_sbi, s_real=s_real.mean(1),
                        s_sbi=s_sbi.mean(1), sbi_variants=variants)

    # 7. Speed.
    speed = benchmark_temporal(onnx_path, frames, target.size, (1, 4), seconds=3.0)

    # 8. Card.
    wall_s = time.time() - wall_start
    if reused is None:
        macs = count_temporal_macs(net, frames, target.size)
        params = int(sum(p.numel() for p in net.parameters())  # training-only heads aside
                     - sum(p.numel() for m in net.modules() if hasattr(m, "aux_head")
                           for p in m.aux_head.parameters()))
    else:
        macs, params = reused.card.training["model"]["macs"], reused.card.training["model"]["params"]
    fusion = fusion_entry(fusion_rule, weights, spack.id, spack.card.onnx_sha256, frames,
                          n_real=len(t_real), n_sbi=len(t_sbi), threshold=fused_threshold,
                          max_fpr=max_fpr, compared=compared, spatial_gate=spatial_gate)
    protocol = (
        "Validation split of the project's face media (the spatial model's split: groups "
        "disjoint from training, every group holding a fake in validation, so every fake "
        "method is unseen; training saw real videos and self-blended windows only). Windows: "
        f"{frames} consecutive analysed frames at {clip_spec.analysis_fps:g} fps, the agent's "
        "tracker (detector every "
        f"{clip_spec.detect_every} analysed frames, optical flow between, keypoint gain "
        f"{clip_spec.keypoint_gain}), the largest face; up to {per_video} windows per video, "
        "spread evenly and non-overlapping. Window score: the calibrated probability "
        "(temporal: this card's calibration; spatial: the spatial card's calibration applied "
        "to the mean of its logits over the window's frames; fused: the fusion below, "
        f"rule `{fusion_rule}`). Video score: mean of its window scores. Each fake subset is compared against "
        "all validation real windows (videos). Scores from the exported ONNX models on ONNX "
        "Runtime CPU."
    )
    training = {
        "config": config_path.name,
        "recipe": recipe_text(cfg, fakes_cfg),
        "fusion": fusion,
        "fakes": {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in fakes_cfg.__dict__.items()},
        "sbi": dict(cfg["sbi"]),
        "augment": dict(cfg["augment"]),
        "clips": {**dict(cfg["clips"]), "cache_spec": clip_spec.digest()},
        "data": {
            "split": {side: {"groups": len({e.group for e in es}), "files": len(es),
                             "by_label_kind": split_summary[side]}
                      for side, es in (("train", split.train), ("val", split.val))},
            "split_rule": run_setup.split_rule_text(split_cfg),
            "windows": {"train": train_bank.summary(), "val": val_bank.summary(),
                        "val_real_windows": int(is_real.sum()),
                        "val_fake_windows": int((~is_real).sum()),
                        "val_real_with_mesh": len(has_mesh)},
            "watermarked_files": "lower 20% of each frame cut before detection (DreamTalk, EMO)",
        },
        "model": {**cfg["model"], "input_size": target.size, "frames": frames,
                  "macs": int(macs), "params": int(params)},
        "epochs": history,
        "wall_time_s": {"total": round(wall_s, 1), "train": round(train_s, 1),
                        "cache": round(cache_s, 1)},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": seed,
        "export": {"opset": opset, "flip_average": flip_average,
                   "graph": ("logit = mean over the window and its mirror image, one batch"
                             if flip_average else "logit of the window as given")},
        "export_max_abs_diff": max_diff,
        "tensorrt_compat_issues": trt_issues,
    }
    if len(seeds) > 1:
        training["ensemble"] = (reused.card.training["ensemble"] if reused is not None else {
            "seeds": seeds, "epochs": history_by_seed})
    if reused is not None:
        earlier = reused.card.training.get("refit_of") or {}
        training["refit_of"] = {
            "pack": reused.id, "onnx_sha256": reused.card.onnx_sha256,
            "network_of": earlier.get("network_of") or " + ".join(  # where it was trained
                m["pack"] for m in reused.card.training.get("ensemble", {}).get(
                    "members", [{"pack": reused.id}])),
            "note": "network (training log, export check) kept from this pack; calibration, "
                    "fusion and every figure measured again by this run",
        }
        training["torch"] = reused.card.training.get("torch", training["torch"])
    calib_note = (
        f"Platt scaling fitted on {len(t_real)} validation real windows (label 0) and "
        f"{len(t_sbi)} self-blended copies of them (label 1, seeded); no real fake was used."
    )
    threshold_note = (
        f"Lowest probability >= 0.5 such that at most {max_fpr:.0%} of validation real "
        f"windows ({int(is_real.sum())}) score at or above it; measured: "
        f"{results['real_fpr_at_threshold']['temporal_windows']}."
    )
    metrics_out = {
        "protocol": protocol,
        "validation": results,
        "speed_onnxruntime_cpu": {**speed, "cpu": platform.processor() or platform.machine(),
                                  "cores": os.cpu_count(),
                                  "note": "measured while other jobs shared the CPU"},
    }
    card = ModelCard(
        name=str(cfg.get("name", "temporal-sbi")),
        version=str(cfg.get("version", "1.0.0")),
        role="temporal",
        onnx="model.onnx",
        input=InputSpec(size=target.size, scale=target.scale, center_y=target.center_y,
                        frames=frames, layout="NTHWC"),
        calibration=Calibration(temperature=float(temperature), bias=float(bias),
                                fitted_on=calib_note),
        threshold=float(threshold),
        threshold_note=threshold_note,
        training=training,
        metrics=metrics_out,
    )
    write_card(pack_dir, card)
    (work_dir / "results.json").write_text(json.dumps(metrics_out, indent=2) + "\n")
    from engines.train.temporal_card import write_temporal_model_card

    write_temporal_model_card(pack_dir, card, config_path)
    log.info("pack written: %s (%.0f s)", pack_dir, wall_s)
    return pack_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verity train temporal",
        description="Train the temporal deepfake model with self-blended windows and write a pack.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data", type=Path, default=os.environ.get("VERITY_DATA_DIR"),
                        help="face media folder with manifest.csv (default $VERITY_DATA_DIR)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="run outputs")
    parser.add_argument("--pack-out", type=Path, default=None,
                        help="pack folder to write (default WORK/pack)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="face-window cache (default $VERITY_CLIP_CACHE_DIR or .cache/clips)")
    parser.add_argument("--spatial-pack", default="spatial-sbi",
                        help="spatial pack the fusion is fitted with (name or folder)")
    parser.add_argument("--refit-fusion", metavar="PACK", default=None,
                        help="keep PACK's network (trained with this config) and redo only the "
                             "calibration, fusion and figures: a new spatial pack in minutes")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    import yaml

    try:
        check_config(load_config(args.config))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"verity train temporal: {args.config}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        pack = run(args.config, args.data, args.work, args.pack_out, cache_dir=args.cache,
                   spatial_pack=args.spatial_pack, refit=args.refit_fusion)
    except (RefitError, PackError) as exc:
        print(f"verity train temporal: {exc}", file=sys.stderr)
        return 2
    print(pack)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
