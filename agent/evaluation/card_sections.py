"""Measured sections of a model pack's MODEL_CARD.md, written by the command that measured them
(`verity eval --write-card`, `verity calibrate --write-card`): the figures and the command
line that reproduces them, so the card never quotes a figure without its protocol."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engines.cards import with_section, write_section

EVAL_TITLE = "## Through the agent (verity eval)"
SWEEP_TITLE = "## Robustness (verity eval --sweep)"

__all__ = ["EVAL_TITLE", "SWEEP_TITLE", "command_line", "eval_body", "model_overrides",
           "sweep_body", "with_section", "write_section"]


def model_overrides(models) -> list[str]:
    """The environment settings that make the default config run `models`' temporal and deep
    packs (a pack folder outside the shipped ones is named PACK_DIR)."""
    from agent.config import ModelsConfig
    from engines.registry import PACKS_DIR

    defaults, out = ModelsConfig(), []
    for role in ("temporal", "deep"):
        value, default = getattr(models, role), getattr(defaults, role)
        if value == default:
            continue
        shown = "none" if value is None else (value if (PACKS_DIR / value).is_dir() else "PACK_DIR")
        out.append(f"VERITY_MODELS__{role.upper()}={shown}")
    return out


def command_line(argv: Sequence[str], overrides: Sequence[str] = ()) -> str:
    """The command as a reader can re-run it: the data folder as DATA, a config by its file
    name, without the output and card options. overrides: environment settings the run used
    (model_overrides); without a --config saying so, the command carries them."""
    out, skip = ["verity"], False
    if "--config" not in argv:
        out = [*overrides, *out]
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--json", "--log-level"):
            skip = True
            continue
        if arg in ("--write-card", "--no-progress"):
            continue
        previous = argv[i - 1] if i else ""
        if previous == "--manifest":
            arg = "DATA/" + Path(arg).name
        elif previous in ("--config", "--split-config"):
            arg = Path(arg).name
        out.append(arg)
    return " ".join(out)


def eval_body(report: dict, command: str) -> str:
    unknown = report["unknown"]
    protocol = report["protocol"]
    lines = [
        "```", command, "```", "",
        f"The agent's own pipeline (decode at {protocol['analysis_fps']:g} analysed fps, the "
        f"{protocol['detector']['type']} detector every {protocol['detect_every']} analysed "
        f"frames with tracking in between, alignment, quality gate{_gate(protocol)}, "
        "out-of-distribution check, "
        f"models {', '.join(protocol['models'].values())}) on {protocol['files']} files in "
        f"{protocol['wall_time_s']:.0f} s. Video score: the mean of a file's frame scores (frame: "
        "the max over its judged faces). A family's AUC compares its fakes with every real file "
        "of the run.",
        "",
        "| subset | fake files | video AUC (95% interval) | frame AUC | unknown files |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, block in report["by_kind"].items():
        lines.append(f"| all {kind}s | {block['video']['n_fake']} | {_auc_with_interval(block)} | "
                     f"{_f(block['frame']['auc'])} | |")
    for family, block in report["per_family"].items():
        lines.append(f"| {family} | {block['video']['n_fake']} | {_auc_with_interval(block)} | "
                     f"{_f(block['frame']['auc'])} | {block.get('unknown_files', 0)} of "
                     f"{block.get('files')} |")
    lines += _model_table(report)
    lines += [
        "",
        f"Unknown: {unknown['files']:.1%} of files (real {unknown['real_files']:.1%}, fake "
        f"{unknown['fake_files']:.1%}), {unknown['faces']:.1%} of faces; reasons "
        f"{json.dumps(unknown['refused_reasons'])}. Intervals: bootstrap over files, fakes and "
        "reals resampled separately (2000 resamples).",
    ]
    from agent.evaluation.report import alert_summary

    alerts = alert_summary(report)
    if alerts:
        lines += ["", f"Alerts the agent raised (rolling score, minimum duration, as live): {alerts}."]
    return "\n".join(lines)


def _model_table(report: dict) -> list[str]:
    """Video AUC of each member on its own next to the fused score (when models were fused)."""
    from agent.evaluation.report import model_rows

    rows = model_rows(report)
    if not rows:
        return []
    families = list(report["per_family"])
    lines = ["", ("Each model's own calibrated probability in place of the fusion, on the faces "
                  "it judged (temporal: once a track has a full window), video AUC:"), "",
             "| score | all | " + " | ".join(families) + " |",
             "| --- | --- | " + " | ".join("---" for _ in families) + " |"]
    for role, _, overall, per_family in rows:
        name = "fused (the agent's score)" if role == "fused" else f"{role} alone"
        cells = [_f(per_family[f]["video"]["auc"]) if f in per_family else "n/a" for f in families]
        lines.append(f"| {name} | {_f(overall['video']['auc'])} | " + " | ".join(cells) + " |")
    return lines


def sweep_body(table_text: str, command: str, wall_s: float) -> str:
    return "\n".join(["```", command, "```", "", f"{wall_s / 60:.0f} min on the build machine.",
                      "", "```", table_text.strip(), "```"])


def member_sweep_body(table_text: str, command: str, role: str, fused_by: str,
                      wall_s: float) -> str:
    """A fused run's sweep as one member measured it: that model's own calibrated probability
    on the same faces (the spatial member scores every face exactly as it does alone)."""
    return "\n".join([
        "```", command, "```", "",
        f"This model's own probability ({role}) in the agent's fused run with {fused_by}: the "
        "same files, faces and perturbations as the fused table in that card, "
        f"{wall_s / 60:.0f} min on the build machine for both.",
        "", "```", table_text.strip(), "```"])


def _gate(protocol: dict) -> str:
    quality = protocol.get("quality")  # reports written before it was recorded lack it
    return f" ({', '.join(f'{k} {v:g}' for k, v in quality.items())})" if quality else ""


def _auc_with_interval(block: dict) -> str:
    low, high = block["video"].get("auc_ci95") or (None, None)
    interval = f" ({_f(low)}-{_f(high)})" if low is not None and high is not None else ""
    return _f(block["video"]["auc"]) + interval


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
