"""MODEL_CARD.md: the human-readable card, written from the measured results of a run."""

from __future__ import annotations

from pathlib import Path

from engines.registry import ModelCard


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(rows: dict) -> list[str]:
    lines = [
        "| subset | fake files | real files | frame AUC | frame AP | frame EER | video AUC | video AP | video EER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        f, v = r["frame"], r["video"]
        lines.append(
            f"| {name} | {v['n_fake']} | {v['n_real']} | {_fmt(f['auc'])} | {_fmt(f['ap'])} | "
            f"{_fmt(f['eer'])} | {_fmt(v['auc'])} | {_fmt(v['ap'])} | {_fmt(v['eer'])} |"
        )
    return lines


def _stages_text(stages: list) -> list[str]:
    lines = ["Training stages (each restarts the cosine LR schedule from the previous weights):", ""]
    for i, st in enumerate(stages, 1):
        lines.append(f"{i}. " + (", ".join(f"{k}: {v}" for k, v in st.items()) or "the base `train`/`augment` settings"))
    return lines + [""]


def write_model_card(pack_dir: Path, card: ModelCard, results: dict, config_path: Path,
                     work_dir: Path) -> Path:
    t = card.training
    m = card.metrics
    if not t.get("stages"):
        import yaml

        t = {**t, "stages": (yaml.safe_load(Path(config_path).read_text()) or {}).get("train", {}).get("stages")}
    sanity = m.get("demo_sanity", {})
    speed = m.get("speed_onnxruntime_cpu", {})
    split = t["data"]["split"]
    faces = t["data"]["faces"]
    model = t["model"]
    wall = t["wall_time_s"]
    lines = [
        f"# {card.name} {card.version}: per-frame deepfake model (self-blended images)",
        "",
        "## Intended use",
        "",
        "Verity's spatial model: scores each aligned face crop of a live stream for blending "
        "artefacts (face swaps, face reenactment pasted back into a frame, lip-sync mouths "
        "pasted into real video). One logit per crop; the agent calibrates it "
        "(`sigmoid(logit / T + b)`), takes the max over faces per frame and averages over "
        "frames. A screening signal for a human to review, not proof: see Limitations.",
        "",
        "## Input and output",
        "",
        f"- `crops`: uint8 [N, {card.input.size}, {card.input.size}, 3] BGR, aligned with "
        f"`engines.faces.align.AlignSpec(size={card.input.size}, scale={card.input.scale}, "
        f"center_y={card.input.center_y})` from the detector's 4 keypoints. Normalisation is "
        "inside the graph.",
        "- `logits`: float32 [N]; probability = sigmoid(logit / T + b) with "
        f"T = {card.calibration.temperature:.4f}, b = {card.calibration.bias:.4f}.",
        "- `embedding`: float32 [N, C], the pooled last-stage features read by the "
        "out-of-distribution check (see below); ONNX Runtime only (a TensorRT engine is built "
        "from the logits-only graph)." if card.ood else "",
        f"- Shipped threshold: **{card.threshold:.4f}** ({card.threshold_note})",
        f"- Network: plain residual CNN (`engines.models.VerityCNN`), widths {model.get('widths')}, "
        f"depths {model.get('depths')}, {model['params'] / 1e6:.2f} M parameters, "
        f"{model['macs'] / 1e6:.0f} M multiply-adds per crop; ONNX opset 17, "
        f"{(pack_dir / card.onnx).stat().st_size / 1e6:.2f} MB. Trained from scratch (no "
        "pretrained weights).",
        "",
        "## Data",
        "",
        "The project's face-media folder (third-party research footage; never shipped). Split by "
        f"group ({t['data']['split_rule']}):",
        "",
        "| side | groups | files | per label/kind |",
        "| --- | --- | --- | --- |",
    ]
    for side in ("train", "val"):
        s = split[side]
        kinds = ", ".join(f"{k}: {v}" for k, v in s["by_label_kind"].items() if k not in ("files", "groups"))
        lines.append(f"| {side} | {s['groups']} | {s['files']} | {kinds} |")
    lines += [
        "",
        f"Faces: {faces['train']} training crops from {faces['train_files']} real files "
        f"(up to {t.get('faces', {}).get('frames_per_video', '?')} frames per video, every detected face with an "
        f"eye distance >= 24 px); {faces['val']} validation crops from {faces['val_files']} files. "
        f"Watermarked fakes: {t['data']['watermarked_files']}. Stills: {t['data']['stills']} "
        "(so real photos and GAN stills are compared at one pixel size and one JPEG quality).",
        "",
        "## Recipe",
        "",
        t["recipe"],
        "",
        *(_stages_text(t.get("stages")) if t.get("stages") else []),
        "Self-blend (engines/synthesis/sbi.py): mask = filled convex hull of the 468 face-mesh "
        "points (all points / inner face / lower face / dilated), small random affine and "
        "elastic deformation; one side of the pair gets an RGB/HSV/brightness/contrast shift "
        "then a x2/x4 downscale-and-up or a sharpening; the mask is resized, blurred, cut to its "
        "core, blurred again and scaled by a ratio from {0.25, 0.5, 0.75, 1, 1, 1}.",
        "",
        f"Config: `configs/train/{config_path.name}` (every knob: seed, split, frames, crops, "
        "model, epochs, batch, learning rate, augmentation probabilities).",
        "",
        "## Reproduce",
        "",
        "```",
        f"verity train spatial --config configs/train/{config_path.name} --data $VERITY_DATA_DIR "
        f"--pack-out engines/packs/{card.name}",
        "# equivalently: python -m engines.train.spatial --config ... --data ... --pack-out ...",
        "```",
        "",
        f"Wall time on the build machine (2 CPU cores, shared): training {wall['train'] / 60:.1f} "
        f"min (timed when each stage ran; a reused stage checkpoint keeps its time), face cache "
        f"{wall['cache'] / 60:.1f} min (reused when present), the run that wrote this pack "
        f"{wall['total'] / 60:.1f} min. torch {t['torch']}, seed {t['seed']}. ONNX export checked "
        f"against torch: max |diff| = {t['export_max_abs_diff']:.1e}.",
        "",
        "Training log (per epoch; `val_sbi_auc`: validation reals vs their self-blends):",
        "",
        "| stage | epoch | loss | train acc | val SBI AUC | lr at end | epoch s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in t["epochs"]:
        lines.append(f"| {e.get('stage', 1)} | {e['epoch']} | {e['loss']} | {e['train_acc']} | "
                     f"{e.get('val_sbi_auc', 'n/a')} | {e['lr']} | {e['epoch_s']} |")
    v = m["validation"]
    lines += [
        "",
        "## Validation (all fake methods unseen in training)",
        "",
        "Produced by the training command above (numbers from `card.json` -> `metrics`).",
        "",
        m["protocol"],
        "",
        "### Overall",
        "",
        *_table(v["overall"]),
        "",
        "### Per method family",
        "",
        *_table(v["family"]),
        "",
        "### Per method",
        "",
        *_table(v["method"]),
        "",
        f"Real false-positive rate at the threshold: {v['real_fpr_at_threshold']['frames']} of "
        f"frames, {v['real_fpr_at_threshold']['videos_and_stills']} of videos and stills. "
        f"Self-blends of validation reals (a sanity check of what the model learned, not a "
        f"fake-detection figure): AUC {v['sbi_of_val_reals']['auc']}, "
        f"{v['sbi_of_val_reals']['tpr_at_threshold']:.0%} above the threshold.",
        "",
        "Paired comparison (group `vrt_face:1`: one real clip and lip-sync / talking-head fakes "
        "made from it; video-level probability):",
        "",
        "| file | fake | method | p |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results["per_file"].items():
        if r["group"] == "vrt_face:1":
            lines.append(f"| {name} | {r['fake']} | {r['method'] or 'real'} | {r['p']:.3f} |")
    lines += [
        "",
        "## Demo sanity check",
        "",
        sanity.get("protocol", ""),
        "",
        f"- real astronaut: p = {_fmt(sanity.get('real'))} (after JPEG q75: "
        f"{_fmt(sanity.get('real_jpeg75'))})",
        f"- self-blended astronaut, JPEG q75: p = {', '.join(_fmt(x) for x in sanity.get('sbi_jpeg75', []))}",
        f"- threshold: {card.threshold:.4f}",
        *_portrait_lines(m.get("real_portraits")),
        "",
        "## Speed (ONNX Runtime, CPU)",
        "",
        "`python -m engines.export --bench engines/packs/" + card.name + "` "
        "(median latency, random crops; measured at the end of training on the build machine, "
        "a shared 2-core VM, so treat as indicative):",
        "",
        "| batch | ms per call | ms per face |",
        "| --- | --- | --- |",
    ]
    for key in ("batch1", "batch16"):
        if key in speed:
            lines.append(f"| {key[5:]} | {speed[key]['ms_per_call']} | {speed[key]['ms_per_face']} |")
    if card.ood is not None:
        m = card.ood.measured
        refused = m.get("refused_share", {})
        lines += [
            "",
            "## Out-of-distribution check (verdict unknown)",
            "",
            card.ood.method,
            "",
            f"- threshold {m.get('threshold')} on {m.get('dims')}-d embeddings (Ledoit-Wolf shrinkage "
            f"{m.get('shrinkage')}); distance p50/p99: training faces {m.get('train_distance_p50_p99')}, "
            f"held-out real faces {m.get('held_out_distance_p50_p99')}",
            f"- refused: {_fmt(refused.get('val_real_faces_other_half'))} of "
            f"{refused.get('n_val_real_faces_other_half')} validation real faces (the half not "
            "used for the threshold); validation fake faces by family: "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in refused.get("val_fake_faces_by_family", {}).items()),
            f"- non-faces refused: uniform noise {_fmt(refused.get('uniform_noise'))}, flat colour "
            f"{_fmt(refused.get('flat_colour'))}, windows of scikit-image photos without faces "
            f"{_fmt(refused.get('photos_without_faces'))}",
        ]
    lines += [
        "",
        "## Limitations",
        "",
        "- Trained on a small set of real faces (tens of identities, mostly frontal talking "
        "heads, news and webcam clips); validated on a small set of fakes (a few dozen videos). "
        "The figures have wide uncertainty: a handful of videos per method.",
        "- SBI teaches blending-boundary and colour-mismatch artefacts. Fakes without a blend "
        "(GAN stills generated whole, full-frame talking-head synthesis such as SadTalker, EMO "
        "or DreamTalk, diffusion video) carry other artefacts, and an SBI model is expected to "
        "be weak there: read the per-family rows, not only the overall AUC.",
        "- Heavy compression, very small faces (eye distance under ~24 px), strong motion blur, "
        "profile views and occlusions lower the scores' reliability; the video protocol "
        "(mean over frames) is what the threshold was chosen for at frame level only.",
        "- The calibration was fitted on validation reals and their self-blends, not on real "
        "fakes: probabilities for unseen fake types are not calibrated.",
        "- Research footage only: the training media are third-party and research-only; this "
        "pack holds weights only.",
        "",
    ]
    path = pack_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def _portrait_lines(portraits: dict | None) -> list[str]:
    """The real-portrait check (engines.train.evaluate.real_portraits), when measured."""
    if not portraits:
        return []
    lines = ["", "Real portraits never seen in training (false alarms on photos): "
             + portraits["protocol"] + ".", "",
             "| photo | eye distance (px) | p at native size | p as a normalised still |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['image']} | {r['eye_px']:g} | {r['p_native']:.3f} | {r['p_still']:.3f} |"
              for r in portraits["faces"]]
    lines += ["", f"{portraits['above_threshold']} of {portraits['scored']} scores at or above "
              "the threshold."]
    return lines
