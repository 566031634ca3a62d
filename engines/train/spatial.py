"""`verity train spatial`: the per-frame model, trained on real faces with self-blended images.

    python -m engines.train.spatial --config configs/train/spatial-sbi.yaml --data DIR \
        [--work runs/spatial-sbi] [--pack-out engines/packs/spatial-sbi]

Steps: read the manifest, split by group (every group with a fake goes to validation), build
or reuse the face-crop cache, train on pairs (each real crop and its own self-blend), export
ONNX with preprocessing inside, score the validation split with ONNX Runtime, fit the
calibration on validation reals and their self-blends, pick the threshold, check the demo
face, write the pack (model.onnx, card.json, MODEL_CARD.md).
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
import yaml

from engines.train import run_setup

log = logging.getLogger("verity.train.spatial")

DEFAULT_WORK = Path("runs/spatial-sbi")
DEFAULT_CACHE = Path(".cache/faces")


def load_config(path: Path) -> dict:
    """The config as a mapping, checked against its schema (engines.train.recipes) first."""
    from engines.train.recipes import SpatialRecipe

    return run_setup.load_config(path, ("input", "faces", "sbi", "augment", "model", "train"),
                                 SpatialRecipe)


def _specs(cfg: dict):
    from engines.data.cache import CacheSpec
    from engines.faces.align import AlignSpec

    inp = cfg["input"]
    target = AlignSpec(int(inp.get("size", 128)), float(inp.get("scale", 3.0)),
                       float(inp.get("center_y", 0.55)))
    faces = {k: v for k, v in cfg["faces"].items() if k != "workers"}
    cache_spec = CacheSpec.from_dict(
        {**faces, "crop_scale": target.scale, "crop_center_y": target.center_y}
    )
    return target, cache_spec


def stage_configs(cfg: dict) -> list[dict]:
    """The training stages: `train.stages` is a list of overrides (keys of `train`, plus an
    optional `augment` / `sbi` mapping) applied in order on top of the base config; without it
    there is one stage. Each stage restarts the LR schedule and continues from the last."""
    stages = cfg["train"].get("stages") or [{}]
    out = []
    for i, override in enumerate(stages):
        override = dict(override)
        stage = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
        for section in ("augment", "sbi", "model"):
            if section in override:
                stage[section] = {**cfg.get(section, {}), **override.pop(section)}
        stage["train"] = {k: v for k, v in cfg["train"].items() if k != "stages"}
        stage["train"].update(override)
        stage["stage"] = i + 1
        out.append(stage)
    return out


def check_config(cfg: dict) -> None:
    """Every stage's blend and augmentation settings, checked before any work (ValueError
    naming the setting)."""
    from engines.synthesis.sbi import SBIConfig
    from engines.train.augment import AugmentConfig

    for stage in stage_configs(cfg):
        SBIConfig.from_dict(stage["sbi"])
        AugmentConfig.from_dict(stage["augment"])


# Config sections that do not change a stage's weights (the split acts through the files).
_NOT_TRAINING = ("eval", "name", "version", "ood", "split")


def stage_keys(cfg: dict, files: list[str], fake_files: list[str] | None = None) -> list[str]:
    """Per stage, a digest of its config, the previous stage and its training files."""
    keys, key = [], run_setup.digest(sorted(files))
    for stage in stage_configs(cfg):
        key = run_setup.digest([key, {k: v for k, v in stage.items() if k not in _NOT_TRAINING}])
        if float(stage["train"].get("fake_share", 0)) > 0:
            key = run_setup.digest([key, sorted(fake_files or [])])
        keys.append(key)
    return keys


def train_stages(cfg: dict, bank, target, loose, work_dir: Path, monitor=None, fakes=None):
    """Run every stage; a stage whose checkpoint (keyed by its config, the previous stage
    and the training files) is already in work_dir is loaded instead of retrained."""
    import torch

    net, history, seconds = None, [], 0.0
    keys = stage_keys(cfg, bank.files, fakes.files if fakes is not None else None)
    log_path = work_dir / "train_log.jsonl"
    log_path.write_text("")
    for stage, key in zip(stage_configs(cfg), keys):
        ckpt = work_dir / f"stage{stage['stage']}-{key}.pt"
        if ckpt.is_file():
            from engines.models import build_model

            saved = torch.load(ckpt, map_location="cpu")
            net = build_model(stage["model"])
            net.load_state_dict(saved["state_dict"])
            net.eval()
            history += saved["history"]
            seconds += saved["seconds"]
            with open(log_path, "a") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in saved["history"])
            log.info("stage %d: reused %s", stage["stage"], ckpt.name)
            continue
        net, stage_history, stage_seconds = train_model(stage, bank, target, loose, work_dir,
                                                        monitor, init=net, fakes=fakes)
        for record in stage_history:
            record["stage"] = stage["stage"]
        torch.save({"state_dict": net.state_dict(), "history": stage_history,
                    "seconds": stage_seconds}, ckpt)
        history += stage_history
        seconds += stage_seconds
    return net, history, seconds


def train_model(cfg: dict, bank, target, loose, work_dir: Path, monitor=None, init=None,
                fakes=None):
    """Train the network on the bank's real faces and their self-blends (from `init`'s
    weights when given), with `train.fake_share` of the pairs taking a face from `fakes`
    instead; returns (module in eval mode, per-epoch history, seconds)."""
    import torch
    from torch.utils.data import DataLoader

    from engines.models import Preprocess, build_model
    from engines.synthesis.sbi import SBIConfig
    from engines.train.augment import AugmentConfig
    from engines.train.dataset import (
        FakePairMaker,
        PairDataset,
        PairMaker,
        collate_pairs,
    )
    from engines.train.sampling import PlanSampler, worker_init

    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    run_setup.seed_everything(seed + 1000 * (int(cfg.get("stage", 1)) - 1), int(tcfg.get("threads", 2)))
    net = build_model(cfg["model"])
    if init is not None:
        net.load_state_dict(init.state_dict())
    pre = Preprocess()
    maker = PairMaker(loose, target, SBIConfig.from_dict(cfg["sbi"]),
                      AugmentConfig.from_dict(cfg["augment"]))
    aug = AugmentConfig.from_dict(cfg["augment"])
    dataset = PairDataset(bank, maker, fakes, float(tcfg.get("fake_share", 0.0)),
                          FakePairMaker(loose, target, aug,
                                        float(tcfg.get("fake_colour_match_p", 0.0))),
                          str(tcfg.get("fake_partner", "any")),
                          float(tcfg.get("fake_partner_min_interocular", 0.0)))
    weights = bank.sample_weights(float(tcfg.get("file_balance_power", 0.5)))
    batch_pairs = int(tcfg.get("batch_pairs", 32))
    steps = int(tcfg.get("steps_per_epoch", 0)) or max(1, len(bank) // batch_pairs)
    epochs = int(tcfg.get("epochs", 10))
    total = steps * epochs
    warmup = int(float(tcfg.get("warmup_epochs", 1)) * steps)
    opt = run_setup.adamw(net, tcfg)
    lr_at = run_setup.warmup_cosine(float(tcfg.get("lr", 3e-3)), warmup, total)

    smoothing = float(tcfg.get("label_smoothing", 0.0))
    aux_weight = float(tcfg.get("aux_weight", 0.0))
    # bfloat16 autocast (convolutions on the CPU's bf16 units where it has them) and
    # channels-last activations: measured ~2.5x faster per step on the build machine.
    bf16 = bool(tcfg.get("bf16", False))
    channels_last = bool(tcfg.get("channels_last", bf16))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    F = torch.nn.functional
    workers = int(tcfg.get("workers", 1))
    sampler = PlanSampler(weights, steps * batch_pairs, seed + 1000 * (int(cfg.get("stage", 1)) - 1))
    loader = DataLoader(
        dataset, batch_size=batch_pairs, sampler=sampler, num_workers=workers,
        collate_fn=collate_pairs, worker_init_fn=worker_init if workers else None,
        drop_last=True, prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0,
        multiprocessing_context="spawn" if workers else None,
    )
    history = []
    step = 0
    log_path = work_dir / "train_log.jsonl"
    start = time.time()
    for epoch in range(epochs):
        net.train()
        sampler.set_epoch(epoch)
        losses, correct, seen = [], 0, 0
        t0 = time.time()
        for crops, labels, masks, map_weight in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            x = pre(crops)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, aux = net.forward_aux(x)
            logits, aux = logits.float(), aux.float()
            target_y = labels * (1 - smoothing) + 0.5 * smoothing
            loss = F.binary_cross_entropy_with_logits(logits, target_y)
            if aux_weight > 0:
                # Blending boundary B = 4 M (1 - M) (Face X-ray), pooled to the map size.
                boundary = F.adaptive_avg_pool2d(4 * masks * (1 - masks), aux.shape[-2:])
                per_crop = F.binary_cross_entropy_with_logits(aux, boundary, reduction="none")
                per_crop = per_crop.mean(dim=(1, 2, 3))
                loss = loss + aux_weight * (per_crop * map_weight).sum() / map_weight.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            correct += int(((logits.detach() > 0).float() == labels).sum())
            seen += len(labels)
        record = {
            "stage": int(cfg.get("stage", 1)), "epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
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
    if channels_last:
        net = net.to(memory_format=torch.contiguous_format)
    return net, history, time.time() - start


def make_torch_scorer(net, batch: int = 128):
    import torch

    from engines.models import CropClassifier

    model = CropClassifier(net).eval()

    def score(crops: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(crops), batch):
                out.append(model(torch.from_numpy(np.ascontiguousarray(crops[i : i + batch]))).numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    return score


def run(config_path: Path, data_dir: Path | None, work_dir: Path = DEFAULT_WORK,
        pack_dir: Path | None = None, *, cache_dir: Path | None = None) -> Path:
    """Train, export, validate and write a model pack. Returns the pack folder.

    pack_dir: where the pack goes (default work_dir / "pack"); cache_dir: the face-crop cache
    (default $VERITY_CACHE_DIR or .cache/faces).
    """
    import torch

    from engines import metrics
    from engines.data.cache import build_cache
    from engines.export import benchmark, export_onnx, verify_export
    from engines.manifest import read_manifest
    from engines.models import count_macs
    from engines.portraits import real_portraits
    from engines.registry import Calibration, InputSpec, ModelCard, write_card
    from engines.runtime.sessions import cpu_session, session_logits
    from engines.train.dataset import FaceBank
    from engines.train.evaluate import (
        calibrate,
        demo_sanity,
        fit_calibration,
        pick_threshold,
        protocol_metrics,
        sbi_crops,
        score_bank,
    )

    wall_start = time.time()
    config_path = Path(config_path)
    cfg = load_config(config_path)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    pack_dir = Path(pack_dir) if pack_dir else work_dir / "pack"
    cache_dir = Path(cache_dir or os.environ.get("VERITY_CACHE_DIR") or DEFAULT_CACHE)
    seed = int(cfg.get("seed", 0))
    target, cache_spec = _specs(cfg)
    loose = cache_spec.loose

    # 1. Manifest and split.
    entries = read_manifest(data_dir)
    split_cfg = cfg.get("split", {})
    train_fakes = run_setup.train_fakes(split_cfg)
    split = run_setup.split_and_record(entries, split_cfg, work_dir)
    split_summary = split.summary()

    # 2. Face cache.
    t = time.time()
    cached = build_cache(entries, cache_spec, cache_dir,
                         workers=int(cfg["faces"].get("workers", 1)))
    cache_s = time.time() - t
    train_paths = [cached[e.rel] for e in split.train if e.rel in cached and not e.is_fake]
    val_paths = [cached[e.rel] for e in split.val if e.rel in cached]
    train_bank = FaceBank.load(train_paths, require_mesh=True)
    fake_paths = [cached[e.rel] for e in split.train if e.rel in cached and e.is_fake]
    fake_bank = FaceBank.load(fake_paths, require_mesh=False) if fake_paths else None
    if fake_bank is not None:
        log.info("trained fakes: %d faces from %d files (%s)", len(fake_bank),
                 len(fake_bank.files), ", ".join(sorted(train_fakes)))
    val_bank = FaceBank.load(val_paths, require_mesh=False)
    real_val_idx = [i for i, lab in enumerate(val_bank.labels) if lab == "real"]
    val_real_bank = FaceBank.load(
        [p for p in val_paths if str(np.load(p)["label"]) == "real"], require_mesh=True
    )
    log.info("faces: train %d (from %d files), val %d (%d files, %d real files)",
             len(train_bank), len(train_bank.files), len(val_bank), len(val_bank.files),
             len(real_val_idx))

    # Monitoring during training: validation reals vs their self-blends (never the fakes).
    ecfg = cfg.get("eval", {})
    mon_rng = np.random.default_rng([seed, 5])
    mon_idx = mon_rng.choice(len(val_real_bank), min(400, len(val_real_bank)), replace=False)
    from engines.train.augment import center_crop, h264_recipe_text

    mon_real = center_crop(val_real_bank.crops[np.sort(mon_idx)], loose, target)
    mon_sub = FaceBank(val_real_bank.crops[np.sort(mon_idx)], val_real_bank.mesh[np.sort(mon_idx)],
                       val_real_bank.file_index[np.sort(mon_idx)], val_real_bank.frame[np.sort(mon_idx)],
                       val_real_bank.files, val_real_bank.labels, val_real_bank.methods,
                       val_real_bank.groups, val_real_bank.kinds,
                       val_real_bank.interocular[np.sort(mon_idx)])
    mon_fake = sbi_crops(mon_sub, loose, target, seed + 1)

    # With trained fakes: also their validation faces (other images of the same generators)
    # against the validation real stills, which went through the same still normalisation.
    mon_trained = {}
    for family in sorted(train_fakes):
        idx = [i for i, f in enumerate(val_bank.file_index)
               if val_bank.labels[f] == "fake" and val_bank.methods[f].split(":")[0] == family]
        if idx:
            mon_trained[family] = center_crop(val_bank.crops[idx[:400]], loose, target)
    still_idx = [i for i, f in enumerate(val_bank.file_index)
                 if val_bank.labels[f] == "real" and val_bank.kinds[f] == "image"]
    mon_real_stills = center_crop(val_bank.crops[still_idx], loose, target) if still_idx else None

    def monitor(net):
        score = make_torch_scorer(net)
        r, f = score(mon_real), score(mon_fake)
        y = np.r_[np.zeros(len(r)), np.ones(len(f))]
        out = {"val_sbi_auc": round(metrics.auc(y, np.r_[r, f]), 4),
               "val_real_mean_p": round(float(metrics.sigmoid(r).mean()), 4)}
        if mon_real_stills is not None:
            rs = score(mon_real_stills)
            for family, crops in mon_trained.items():
                g = score(crops)
                out[f"val_{family}_auc"] = round(
                    metrics.auc(np.r_[np.zeros(len(rs)), np.ones(len(g))], np.r_[rs, g]), 4)
        return out

    # 3. Train.
    net, history, train_s = train_stages(cfg, train_bank, target, loose, work_dir, monitor,
                                         fakes=fake_bank)
    torch.save(net.state_dict(), work_dir / "model.pt")

    # 4. Export and verify.
    if pack_dir.exists():
        for name in ("model.onnx", "card.json", "MODEL_CARD.md", "ood.npz"):
            (pack_dir / name).unlink(missing_ok=True)
    pack_dir.mkdir(parents=True, exist_ok=True)
    ood_cfg = cfg.get("ood", {"quantile": 0.995})
    onnx_path = export_onnx(net, pack_dir / "model.onnx", target.size,
                            opset=int(cfg.get("export", {}).get("opset", 17)),
                            embedding=bool(ood_cfg))
    check = center_crop(val_bank.crops[:32], loose, target)
    max_diff = verify_export(net, onnx_path, check)
    log.info("export: %s (%d bytes), max |torch - onnx| = %.2e", onnx_path,
             onnx_path.stat().st_size, max_diff)
    session = cpu_session(onnx_path)

    def ort_scorer(crops: np.ndarray) -> np.ndarray:
        return session_logits(session, crops)

    # 5. Validation scores (ONNX Runtime), calibration and threshold.
    val_logits = score_bank(val_bank, loose, target, ort_scorer)
    real_logits = score_bank(val_real_bank, loose, target, ort_scorer)
    sbi_logits = ort_scorer(sbi_crops(val_real_bank, loose, target, seed + 2))
    temperature, bias = fit_calibration(real_logits, sbi_logits)
    probs = calibrate(val_logits, temperature, bias)
    files = [val_bank.files[i] for i in val_bank.file_index]
    frame_keys, frame_p, _, _ = metrics.frame_and_video_scores(files, val_bank.frame.tolist(), probs)
    label_of = dict(zip(val_bank.files, val_bank.labels))
    real_frame_p = np.array([p for k, p in zip(frame_keys, frame_p) if label_of[k[0]] == "real"])
    max_fpr = float(ecfg.get("calibration_fpr", 0.01))
    threshold = pick_threshold(real_frame_p, max_fpr)
    sbi_p = calibrate(sbi_logits, temperature, bias)
    real_p = calibrate(real_logits, temperature, bias)
    results = protocol_metrics(val_bank, probs, threshold)
    results["sbi_of_val_reals"] = {
        "auc": round(metrics.auc(np.r_[np.zeros(len(real_p)), np.ones(len(sbi_p))], np.r_[real_p, sbi_p]), 4),
        "tpr_at_threshold": round(float((sbi_p >= threshold).mean()), 4),
        "n_real": len(real_p), "n_sbi": len(sbi_p),
    }
    np.savez_compressed(work_dir / "val_scores.npz", logits=val_logits, probs=probs,
                        file_index=val_bank.file_index, frame=val_bank.frame,
                        files=np.array(val_bank.files), labels=np.array(val_bank.labels))

    # 6. Demo sanity check and speed.
    sanity = demo_sanity(ort_scorer, target, temperature, bias, seed=seed)
    portraits = real_portraits(ort_scorer, target, temperature, bias, threshold,
                               cache_spec.still_interocular, cache_spec.still_jpeg_quality)
    log.info("real portraits: %d of %d scores at or above the threshold",
             portraits["above_threshold"], portraits["scored"])
    speed = benchmark(onnx_path, target.size, (1, 16), seconds=2.0)
    log.info("demo sanity: %s", json.dumps(sanity))
    ood_spec = None
    if ood_cfg:
        from engines.train.ood_fit import fit_ood_check

        ood_spec = fit_ood_check(session, train_bank, val_bank, val_real_bank, loose, target,
                                 extra_train=fake_bank,
                                 quantile=float(ood_cfg.get("quantile", 0.995)),
                                 pack_dir=pack_dir, seed=seed)

    # 7. Card.
    wall_s = time.time() - wall_start
    macs = count_macs(net, target.size)
    seen = ""
    if fake_bank is not None:
        seen = (f" Exception: a share of the fully generated faces' groups ({', '.join(f'{k} {v:.0%}' for k, v in sorted(train_fakes.items()))}) "
                "was trained on, so those families' figures are in-method (other images of "
                "generators seen in training), not unseen-method.")
    protocol = (
        "Validation split of the project's face media (groups disjoint from training; every "
        "group holding a fake is in validation, so every fake method is unseen: training saw "
        "reals and self-blends only)." + seen + " Crops: loose cached crop (mediapipe 'both' detector) "
        "centre-cropped to the input AlignSpec. Frame score: max over faces of the calibrated "
        "probability; video score: mean over sampled frames (stills: one frame). AUC/AP/EER per "
        "subset compare its fakes against all validation reals of the same kind (videos or "
        "stills). Stills of both classes were rescaled to a 48 px eye distance and re-encoded "
        "as JPEG q90 before cropping. Scores from the exported ONNX on ONNX Runtime CPU."
    )
    threshold_note = (
        f"Lowest probability >= 0.5 such that at most {max_fpr:.0%} of validation real frames "
        f"({len(real_frame_p)} frames: per frame the max over faces) score at or above it; "
        f"measured real-frame FPR at the threshold: {results['real_fpr_at_threshold']['frames']}."
    )
    calib_note = (
        f"Platt scaling (logistic regression on the logit) fitted on {len(real_logits)} "
        f"validation real face crops (label 0) and {len(sbi_logits)} self-blends of the same "
        "crops (label 1, seeded); no real fake was used."
    )
    group_counts = {
        side: {
            "groups": len({e.group for e in es}),
            "files": len(es),
            "by_label_kind": split_summary[side],
        }
        for side, es in (("train", split.train), ("val", split.val))
    }
    training = {
        "config": config_path.name,
        "recipe": "SBI (self-blended images) on real faces; pair-wise batches (each real "
                  "crop with its own blend"
                  + ("; in stages with train.fake_share, that share of the pairs puts a trained "
                     "fully generated face in place of the blend, its boundary map unsupervised"
                     if fake_bank is not None else "")
                  + "); shared jitter/flip/colour/downscale/blur/noise/"
                  "JPEG/cutout augmentation"
                  + h264_recipe_text(cfg["augment"], "pairs", "H.264 intra frames")
                  + "; BCE on one logit"
                  + (f" plus {float(cfg['train'].get('aux_weight', 0))} x BCE on a "
                     "blending-boundary map (4M(1-M), Face X-ray style)"
                     + (f" from a top-down decoder at stride {cfg['model'].get('map_stride', 4)}"
                        if cfg["model"].get("decoder") else " from the stride-8 features")
                     + (", whose soft maximum also feeds the logit (the map ships in the ONNX)"
                        if cfg["model"].get("map_logit") else " (training only)")
                     if float(cfg["train"].get("aux_weight", 0)) > 0 else "")
                  + ("; fixed high-pass residual channels next to RGB" if cfg["model"].get("highpass") else "")
                  + ("; bfloat16 autocast" if cfg["train"].get("bf16") else "")
                  + "; AdamW, cosine LR per stage, "
                  + " + ".join(str(st["train"].get("epochs")) for st in stage_configs(cfg))
                  + " epochs.",
        "augment": dict(cfg["augment"]),
        "stages": cfg["train"].get("stages"),
        "sbi": dict(cfg["sbi"]),
        "data": {
            "split": group_counts,
            "faces": {"train": len(train_bank), "train_files": len(train_bank.files),
                      "trained_fakes": len(fake_bank) if fake_bank is not None else 0,
                      "val": len(val_bank), "val_files": len(val_bank.files),
                      "val_real_with_mesh": len(val_real_bank)},
            "split_rule": run_setup.split_rule_text(split_cfg),
            "watermarked_files": "lower 20% of each frame cut before detection (DreamTalk, EMO)",
            "stills": "both classes rescaled to 48 px eye distance, JPEG q90, before cropping",
        },
        "faces": dict(cfg["faces"]),
        "model": {**cfg["model"], "input_size": target.size, "macs": int(macs),
                  "params": int(sum(p.numel() for p in net.parameters()))},
        "epochs": history,
        "wall_time_s": {"total": round(wall_s, 1), "train": round(train_s, 1),
                        "cache": round(cache_s, 1)},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": seed,
        "export_max_abs_diff": max_diff,
    }
    metrics_out = {
        "protocol": protocol,
        "validation": {k: v for k, v in results.items() if k != "per_file"},
        "demo_sanity": sanity,
        "real_portraits": portraits,
        "speed_onnxruntime_cpu": {**speed, "cpu": platform.processor() or platform.machine(),
                                  "cores": os.cpu_count()},
    }
    card = ModelCard(
        name=str(cfg.get("name", "spatial-sbi")),
        version=str(cfg.get("version", "1.0.0")),
        role="spatial",
        onnx="model.onnx",
        input=InputSpec(size=target.size, scale=target.scale, center_y=target.center_y),
        calibration=Calibration(temperature=float(temperature), bias=float(bias),
                                fitted_on=calib_note),
        threshold=float(threshold),
        threshold_note=threshold_note,
        ood=ood_spec,
        training=training,
        metrics=metrics_out,
    )
    write_card(pack_dir, card)
    (work_dir / "per_file.json").write_text(json.dumps(results["per_file"], indent=2) + "\n")
    (work_dir / "results.json").write_text(json.dumps(metrics_out, indent=2) + "\n")
    from engines.train.model_card import write_model_card

    write_model_card(pack_dir, card, results, config_path, work_dir)
    log.info("pack written: %s (%.0f s)", pack_dir, wall_s)
    return pack_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verity train spatial",
        description="Train the spatial deepfake model with self-blended images and write a pack.",
    )
    parser.add_argument("--config", type=Path, default=Path("configs/train/spatial-sbi.yaml"))
    parser.add_argument("--data", type=Path, default=os.environ.get("VERITY_DATA_DIR"),
                        help="face media folder with manifest.csv (default $VERITY_DATA_DIR)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="run outputs")
    parser.add_argument("--pack-out", type=Path, default=None,
                        help="pack folder to write (default WORK/pack)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="face-crop cache (default $VERITY_CACHE_DIR or .cache/faces)")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    try:
        check_config(load_config(args.config))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"verity train spatial: {args.config}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pack = run(args.config, args.data, args.work, args.pack_out, cache_dir=args.cache)
    print(pack)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
