"""MODEL_CARD.md of the temporal pack, written from the measured results in its card.json."""

from __future__ import annotations

from pathlib import Path

from engines.registry import ModelCard
from engines.train.model_card import _fmt

FAMILY_ORDER = ("talking_head", "lip_sync", "talking_head_synthesis")
SCORES = ("temporal", "spatial", "fused")


def _auc_table(rows: dict) -> list[str]:
    lines = [
        "| subset | fake videos | fake windows | window AUC: temporal / spatial / fused | "
        "video AUC: temporal / spatial / fused |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        w = " / ".join(_fmt(r[s]["window"]["auc"]) for s in SCORES)
        v = " / ".join(_fmt(r[s]["video"]["auc"]) for s in SCORES)
        lines.append(f"| {name} | {r['temporal']['video']['n_fake']} | "
                     f"{r['temporal']['window']['n_fake']} | {w} | {v} |")
    return lines


def _fusion_lines(fusion: dict) -> list[str]:
    """The fusion rule as the agent applies it, and how every rule measured."""
    rule = fusion.get("rule", "logistic")
    if rule == "gated_max":
        formula = ("    probability = max(spatial if spatial >= "
                   f"{fusion['spatial_gate']:.4f} else 0, temporal)   "
                   "(each by its card's calibration)")
        why = ("The temporal model speaks for the track; the spatial model raises the score "
               "only where it alarms on its own, at or above its card's threshold "
               f"({fusion['spatial_gate']:.4f}: {fusion['spatial_gate_note']}). Below it the "
               "spatial probability is mostly noise on real faces, which the ungated `max` "
               "added to every real track.")
    elif rule == "max":
        formula = ("    probability = max(spatial card calibration of spatial, "
                   "this card's calibration of temporal)")
        why = ("Either model can raise the score and neither can veto the other: they look for "
               "different artefacts (a blend inside one frame; its instability over frames), "
               "and a fake that shows only one of them is still a fake.")
    else:
        formula = (f"    fused_logit = {fusion['weights']['spatial']:.4f} * spatial "
                   f"+ {fusion['weights']['temporal']:.4f} * temporal + ({fusion['bias']:.4f})")
        why = "Weights fitted by logistic regression."
    lines = [
        f"`card.json` -> `training.fusion`, rule `{rule}`:",
        "",
        formula,
        "",
        why,
        "",
        f"- spatial: {fusion['inputs']['spatial']}",
        f"- temporal: {fusion['inputs']['temporal']}",
        f"- fitted with `{fusion['spatial_model']}` on: {fusion['fitted_on']}. Refit when the "
        "spatial pack changes (`verity train temporal` does it; training is reused from its "
        "checkpoint when the config is unchanged).",
        f"- fused threshold (windows): {fusion['threshold']:.4f} ({fusion['threshold_note']}); "
        "the agent alerts at the stream-level threshold in `alert_threshold` (verity calibrate).",
    ]
    compared = fusion.get("compared")
    if compared:
        lines += [
            "",
            "Every rule on the same validation windows (video AUC: mean of a video's window "
            "probabilities, all real fake videos against all real validation videos):",
            "",
            "| rule | self-blend window AUC | minus the chosen rule's (95% interval) "
            "| real fake video AUC |",
            "| --- | --- | --- | --- |",
            *[f"| {r}{' (chosen)' if r == rule else ''} | {_fmt(c['sbi_window_auc'])} | "
              f"{_interval(c.get('sbi_auc_minus_chosen_ci95'))} | {_fmt(c['fake_video_auc'])} |"
              for r, c in compared.items()],
            "",
            "The rule is the config's (`fusion.rule`), compared by the self-blend column, the "
            "only one the fusion may be fitted or chosen on (interval: paired bootstrap over "
            "the windows, reals and self-blends resampled separately, 2000 resamples). "
            + _verdict(rule, compared) + " The real-fake column is shown for every rule and was "
            "in view when the rule changed (1.1.0 `logistic`, 1.2.0 `max`, 1.3.0 `gated_max`): "
            "it is not an untouched figure for the fusion.",
        ]
    return lines


def _interval(bounds) -> str:
    if not bounds or None in bounds:
        return ""
    return f"{bounds[0]:+.3f} to {bounds[1]:+.3f}"


def _verdict(rule: str, compared: dict) -> str:
    """Whether any other rule beats the chosen one on the self-blends beyond its interval."""
    better = [r for r, c in compared.items()
              if (c.get("sbi_auc_minus_chosen_ci95") or [None])[0] is not None
              and c["sbi_auc_minus_chosen_ci95"][0] > 0]
    if better:
        return (f"{', '.join(f'`{r}`' for r in better)} scores higher than `{rule}` beyond "
                "the interval: refit with it (`fusion.rule`).")
    return f"No rule differs from `{rule}` beyond the interval, so it stays."


def _ensemble_text(ensemble: dict | None) -> str:
    if not ensemble:
        return ""
    seeds = ensemble["seeds"]
    return (f" An ensemble of {len(seeds)} such networks, one recipe trained with seeds "
            f"{', '.join(map(str, seeds))} (config `ensemble_seeds`), whose logits the graph "
            "averages; the parameters and multiply-adds above are their sum, the training log "
            f"below is seed {seeds[0]}'s.")


def _refit_lines(t: dict, config_path: Path) -> list[str]:
    """How a pack whose network was kept (--refit-fusion) was made, and from what."""
    refit = t.get("refit_of")
    if not refit:
        return []
    return [
        f"This pack keeps the network trained as `{refit.get('network_of', refit['pack'])}` "
        f"(ONNX sha256 `{refit['onnx_sha256'][:12]}`, taken from `{refit['pack']}`; trained by "
        "the command above, and the training log below is that run's) and refitted the "
        "calibration and the fusion with "
        f"`{t['fusion']['spatial_model']}`; every figure in this card was measured again:",
        "",
        "```",
        f"verity train temporal --config configs/train/{config_path.name} --data $VERITY_DATA_DIR "
        f"--refit-fusion {refit['pack'].split('@')[0]} "
        f"--spatial-pack {t['fusion']['spatial_model'].split('@')[0]} --pack-out PACK",
        "# any pack holding this network (this one included) gives the same result",
        "```",
        "",
    ]


def write_temporal_model_card(pack_dir: Path, card: ModelCard, config_path: Path) -> Path:
    t, m = card.training, card.metrics
    v = m["validation"]
    fusion = t["fusion"]
    model = t["model"]
    wall = t["wall_time_s"]
    split = t["data"]["split"]
    windows = t["data"]["windows"]
    speed = m.get("speed_onnxruntime_cpu", {})
    inp = card.input
    families = {f: v["family"][f] for f in FAMILY_ORDER if f in v["family"]}
    families.update({f: r for f, r in v["family"].items() if f not in families})
    lines = [
        f"# {card.name} {card.version}: temporal deepfake model (self-blended windows)",
        "",
        "## Intended use",
        "",
        "Verity's temporal model: scores a window of consecutive aligned crops of one tracked "
        "face for temporal inconsistency (blending boundaries that flicker or drift, a blended "
        "region that comes and goes, mouth-region blends). One logit per window, fused with the "
        "spatial model's probability by the rule below. A screening signal for a human "
        "to review, not proof: see Limitations.",
        "",
        "## Input and output",
        "",
        f"- `crops`: uint8 [N, {inp.frames}, {inp.size}, {inp.size}, 3] BGR: {inp.frames} "
        f"consecutive analysed frames of one track (10 fps: the agent's default analysis rate), "
        f"each aligned with `engines.faces.align.AlignSpec(size={inp.size}, scale={inp.scale}, "
        f"center_y={inp.center_y})` from the tracker's keypoints. Cast, normalisation and "
        "reordering are inside the graph (the uint8 input feeds a Cast directly: TensorRT-ready).",
        "- `logits`: float32 [N]; probability = sigmoid(logit / T + b) with "
        f"T = {card.calibration.temperature:.4f}, b = {card.calibration.bias:.4f} "
        f"({card.calibration.fitted_on})",
        f"- Threshold (temporal alone): **{card.threshold:.4f}** ({card.threshold_note})",
        f"- Network: (2+1)D CNN (`engines.models.temporal.TemporalNet`): a shared per-frame 2D "
        "stem (stride 4), frame-to-frame feature differences, two residual (2+1)D blocks "
        "(3x3 spatial, 3-tap temporal), a temporal conv over the pooled features and mean / max "
        f"/ standard deviation over time; widths {model.get('widths')}, "
        f"{model['params'] / 1e3:.0f} k parameters, {model['macs'] / 1e6:.0f} M multiply-adds per "
        f"window; ONNX opset 17, {(pack_dir / card.onnx).stat().st_size / 1e6:.2f} MB. Trained "
        "from scratch."
        + (" The graph scores each window and its mirror image in one batch and returns the "
           "mean logit (test-time flip average: twice the multiply-adds above; the speed table below "
           "includes it)."
           if (card.training.get("export") or {}).get("flip_average") else "")
        + _ensemble_text(card.training.get("ensemble")),
        "",
        "## Fusion with the spatial model",
        "",
        *_fusion_lines(fusion),
        "",
        "## Data",
        "",
        f"The project's face-media folder (third-party research footage; never shipped). Split "
        f"by group with the spatial model's settings ({t['data']['split_rule']}):",
        "",
        "| side | groups | files | per label/kind |",
        "| --- | --- | --- | --- |",
    ]
    for side in ("train", "val"):
        s = split[side]
        kinds = ", ".join(f"{k}: {n}" for k, n in s["by_label_kind"].items()
                          if k not in ("files", "groups"))
        lines.append(f"| {side} | {s['groups']} | {s['files']} | {kinds} |")
    clips = t["clips"]
    lines += [
        "",
        f"Windows (engines.data.clips, `python -m engines.data.clips`): each video replayed at "
        f"{clips.get('analysis_fps', 10)} fps through the agent's tracker (detector "
        f"`{clips.get('detector_range', 'both')}` every {clips.get('detect_every', 3)} analysed "
        f"frames, optical flow between, keypoint gain {clips.get('keypoint_gain', 0.35)}); the "
        "largest face kept; loose crops and 468-point face mesh per frame. Training: "
        f"{windows['train']['windows']} windows (overlapping, every start) over "
        f"{windows['train']['frames']} frames of {windows['train']['files']} real videos. "
        f"Validation: {windows['val_real_windows']} real and {windows['val_fake_windows']} fake "
        f"windows from {windows['val']['files']} videos. Watermarked fakes: "
        f"{t['data']['watermarked_files']}.",
        "",
        "## Recipe",
        "",
        t["recipe"],
        "",
        "Self-blend per frame: engines/synthesis/sbi.py (mask = convex hull of the face mesh, "
        "affine + elastic deformation, colour shift and downscale / sharpen of one side, "
        "blurred mask scaled by a blend ratio); the window variants are in "
        "engines/train/temporal_data.py.",
        "",
        f"Config: `configs/train/{config_path.name}` (every knob: seed, split, frames, crops, "
        "window fakes, model, steps, batch, learning rate, augmentation).",
        "",
        "## Reproduce",
        "",
        "```",
        f"verity train temporal --config configs/train/{config_path.name} --data $VERITY_DATA_DIR "
        f"--pack-out engines/packs/{card.name}",
        "# equivalently: python -m engines.train.temporal --config ... --data ... --pack-out ...",
        "```",
        "",
        *_refit_lines(t, config_path),
        f"Wall time on the build machine (2 CPU cores, shared): training {wall['train'] / 60:.1f} "
        f"min, window cache {wall['cache'] / 60:.1f} min (reused when present), the run that "
        f"wrote this pack {wall['total'] / 60:.1f} min. torch "
        f"{t['torch']}, seed {t['seed']}. ONNX export checked against torch: max |diff| = "
        f"{t['export_max_abs_diff']:.1e}; TensorRT compatibility issues: "
        f"{t.get('tensorrt_compat_issues') or 'none'}.",
        "",
        "Training log (`val_sbi_auc`: validation real windows vs their self-blends):",
        "",
        "| epoch | loss | train acc | val SBI AUC | lr at end | epoch s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in t["epochs"]:
        lines.append(f"| {e['epoch']} | {e['loss']} | {e['train_acc']} | "
                     f"{e.get('val_sbi_auc', 'n/a')} | {e['lr']} | {e['epoch_s']} |")
    sbi = v["sbi_of_val_reals"]
    lines += [
        "",
        "## Validation (every fake method unseen in training)",
        "",
        m["protocol"],
        "",
        "### All fakes and per method family",
        "",
        *_auc_table({"all fake videos": v["all_fakes"], **families}),
        "",
        "### Per method",
        "",
        *_auc_table(v["method"]),
        "",
        "### Self-blends of validation real windows (what the model learned; not a "
        "fake-detection figure, and in-sample for the fusion)",
        "",
        "| score | all | " + " | ".join(sbi["variants"]) + " |",
        "| --- | --- | " + " | ".join("---" for _ in sbi["variants"]) + " |",
    ]
    for s in SCORES:
        row = sbi["auc"][s]
        lines.append(f"| {s} | {_fmt(row['all'])} | "
                     + " | ".join(_fmt(row.get(k)) for k in sbi["variants"]) + " |")
    lines += [
        "",
        f"Windows per variant: {sbi['variants']}; {sbi['n_real']} real windows.",
        "",
        "## Speed (ONNX Runtime, CPU)",
        "",
        f"`python -m engines.train.temporal_export --bench engines/packs/{card.name}` (median "
        "latency, random windows; a shared 2-core VM, so indicative):",
        "",
        "| batch | ms per call | ms per window |",
        "| --- | --- | --- |",
    ]
    for key in ("batch1", "batch4"):
        if key in speed:
            lines.append(f"| {key[5:]} | {speed[key]['ms_per_call']} | "
                         f"{speed[key]['ms_per_window']} |")
    lines += [
        "",
        "## Limitations",
        "",
        *[f"- {x}" for x in t.get("limitations", [])],
        "- Trained on about 70 real videos (tens of identities, mostly frontal talking heads); "
        "validated on a few dozen fake videos, a handful per method: wide uncertainty.",
        "- Self-blended windows teach blending artefacts and their instability over time. Fakes "
        "that generate the whole frame (audio-driven talking-head synthesis) have no blending "
        "boundary to flicker; see the per-family table for what that means here.",
        "- The fusion and the fused alert threshold hold for the spatial pack they were "
        f"measured with (`{fusion['spatial_model']}`); with another spatial pack, refit and "
        "recalibrate (the agent refuses the pair until then).",
        "- Windows assume the agent's 10 fps analysis rate and its tracker; other rates or "
        "crop stabilisation change the frame-to-frame statistics the model sees.",
        "- This card's windows of watermarked fakes (DreamTalk, EMO) have the lower 20% of "
        "each frame cut, as the training cache does; the agent sees the watermark, and a mark "
        "inside the crop moves the score (it lowered 1.3.0's on those fakes by up to 0.17). "
        "The agent's own figures (`verity eval`, \"Through the agent\") include the watermarks.",
        "",
    ]
    path = pack_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path
