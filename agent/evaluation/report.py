"""Evaluation reports: metrics by subset, unknown shares, per-file rows, sweep tables.

The JSON document of one run (`build_report`), keys in order:

- schema: "verity-eval/1".
- protocol: what was run: manifest, split, models, threshold (videos) and still_threshold
  (stills: no window, so the spatial card's; equal without a temporal model) and their
  source, frame/video
  score rules, how subsets are compared, analysis_fps, max_seconds, limit, stills policy,
  perturbation (null when clean), seed, wall_time_s.
- counts: files, real, fake, judged, unknown, missing, failed, frames_analysed,
  face_frames, face_frames_judged, face_frames_unknown, faces, faces_refused.
- unknown: shares (0..1) of unknown files among those evaluated (judged + unknown), also
  per label; of face-frames in which the quality gate refused every face; of refused faces;
  with counts by cause (files: no_face / all_faces_refused; faces: too_small, ...).
- overall, by_kind.{video,image}, per_method.<method>, per_family.<family>: metric blocks
  {"frame": {...}, "video": {...}} of engines.metrics.summarize (n, n_fake, n_real, auc, ap,
  eer, accuracy and log_loss at the threshold; video adds auc_ci95: the 95% bootstrap interval
  of its AUC, files resampled within each class, 2000 resamples, seed 0, [null, null] with one
  class); per_method/per_family blocks add files and
  unknown_files (that method's fakes). NaN (one class only) is written as null.
- by_model: {role: {"files", "unknown_files", "overall", "by_kind", "per_family"}} for each
  model the agent ran (spatial, temporal, stills): the same metric blocks from that model's own
  calibrated probability instead of the fusion, over the faces it judged (temporal: faces whose
  track had a full window); files: the judged files it scored; unknown_files: the share of
  evaluated files it judged no face of. What each member adds to the fused score.
- agent_verdicts: {label: {real, fake, unknown}}: the agent's own verdicts per true label.
- alerts: what the agent raised on the videos at the alert threshold in use (its rolling
  score and minimum duration, as live): real_videos and fake_videos {files, alerting, share},
  fake_first_alert_s {median, min, max} (stream seconds; null when none alerted), per_family.
- files: one row per file: path, label, method, kind, status (judged | unknown | missing |
  failed), verdict, video_score, frames_analysed, frames_judged, frames_unknown, faces,
  faces_refused, unknown_reason, refused_reasons, first_alert_s, seconds, error.

A sweep (`build_sweep`) is {"schema": "verity-eval-sweep/1", "protocol", "table", "by_model",
"conditions": [{"condition", "perturbation", "report"}]}, where `table` holds per type and
level the video- and frame-level AUC and unknown share, per-type means and the mean AUC
loss versus clean in points; by_model: {role: table} for each fused model's own probability
(empty when one model decided).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from agent.evaluation.runner import FileResult, Perturbation
from engines import metrics

SCHEMA = "verity-eval/1"
SWEEP_SCHEMA = "verity-eval-sweep/1"
FRAME_RULE = "per frame: max over its judged faces of the calibrated fake probability"
VIDEO_RULE = "per file: mean of its frame scores (a still is one frame)"
COMPARISON_RULE = (
    "overall: every judged file; by_kind: that kind's fakes against its reals; per_method / "
    "per_family: that subset's fakes against all judged reals. Unknown files (no face judged) "
    "are left out of every metric and reported under `unknown`."
)


def _round(value):
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


def metric_block(results: Iterable[FileResult], threshold: float,
                 still_threshold: float | None = None) -> dict:
    """Frame- and video-level metrics over the judged files among `results`; accuracy at
    each file's threshold (stills: still_threshold, when given)."""
    judged = [r for r in results if r.status == "judged"]
    still = threshold if still_threshold is None else still_threshold
    file_threshold = {str(i): still if r.item.kind == "image" else threshold
                      for i, r in enumerate(judged)}
    files = [str(i) for i, r in enumerate(judged) for _ in r.judged_frames]
    frames = [f for r in judged for f in r.judged_frames]
    probabilities = [p for r in judged for p in r.judged_probabilities]
    label = {str(i): int(r.item.is_fake) for i, r in enumerate(judged)}
    if probabilities:
        frame_keys, frame_p, video_keys, video_p = metrics.frame_and_video_scores(
            files, frames, probabilities
        )
    else:
        frame_keys, frame_p, video_keys, video_p = [], np.zeros(0), [], np.zeros(0)
    frame_y = [label[k[0]] for k in frame_keys]
    video_y = [label[k] for k in video_keys]
    def summary(y, scores, at) -> dict:
        return {k: _round(v) for k, v in metrics.summarize(y, scores, scores, at).items()}

    frame_at = np.array([file_threshold[k[0]] for k in frame_keys])
    video_at = np.array([file_threshold[k] for k in video_keys])
    video = summary(video_y, video_p, video_at)
    # Files are the independent unit: the interval resamples them (frames of a file move together).
    video["auc_ci95"] = [_round(v) for v in metrics.auc_interval(video_y, video_p)]
    return {"frame": summary(frame_y, frame_p, frame_at), "video": video}


def model_roles(results: Iterable[FileResult]) -> list[str]:
    """The model roles that judged any face among `results`, in a fixed order."""
    seen = {role for r in results for scores in r.judged_by_model for role in scores}
    order = ["deep", "spatial", "temporal", "stills"]
    return [role for role in order if role in seen] + sorted(seen - set(order))


def as_model(result: FileResult, role: str) -> FileResult:
    """`result` as if `role`'s own probability were the agent's score: only the faces that
    model judged (a file none of them is in becomes unknown)."""
    if result.status != "judged":
        return result
    pairs = [(frame, scores[role])
             for frame, scores in zip(result.judged_frames, result.judged_by_model)
             if role in scores]
    return replace(result, status="judged" if pairs else "unknown",
                   judged_frames=[frame for frame, _ in pairs],
                   judged_probabilities=[p for _, p in pairs])


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def file_row(r: FileResult) -> dict:
    score = r.video_score
    return {
        "path": r.item.rel,
        "label": r.item.label,
        "method": r.item.method_name,
        "kind": r.item.kind,
        "status": r.status,
        "verdict": r.verdict,
        "video_score": None if score is None else round(score, 4),
        "frames_analysed": r.frames_analysed,
        "frames_judged": r.frames_judged,
        "frames_unknown": r.frames_unknown,
        "faces": r.faces,
        "faces_refused": r.faces_refused,
        "unknown_reason": r.unknown_reason,
        "refused_reasons": r.refused_reasons,
        "first_alert_s": r.first_alert_s,
        "seconds": round(r.seconds, 3),
        "error": r.error,
    }


def alert_block(results: list[FileResult]) -> dict:
    """What the agent itself raised on the videos, at the alert threshold in use: the
    product's decision (rolling score, minimum duration), not a threshold on the mean score."""
    videos = [r for r in results if r.item.kind == "video" and r.status in ("judged", "unknown")]

    def counts(pool: list[FileResult]) -> dict:
        alerting = [r for r in pool if r.alerted]
        return {"files": len(pool), "alerting": len(alerting),
                "share": _share(len(alerting), len(pool))}

    fakes = [r for r in videos if r.item.is_fake]
    times = [r.first_alert_s for r in fakes if r.alerted]
    return {
        "real_videos": counts([r for r in videos if not r.item.is_fake]),
        "fake_videos": counts(fakes),
        "fake_first_alert_s": ({"median": round(float(np.median(times)), 2),
                                "min": min(times), "max": max(times)} if times else None),
        "per_family": {f: counts([r for r in fakes if r.item.family == f])
                       for f in sorted({r.item.family for r in fakes})},
    }


def build_report(results: list[FileResult], *, threshold: float, protocol: dict,
                 still_threshold: float | None = None) -> dict:
    """The JSON document of one evaluation run (keys: see the module docstring)."""
    still_threshold = threshold if still_threshold is None else still_threshold
    evaluated = [r for r in results if r.status in ("judged", "unknown")]
    judged = [r for r in evaluated if r.status == "judged"]
    unknown = [r for r in evaluated if r.status == "unknown"]
    reals = [r for r in judged if not r.item.is_fake]
    status = Counter(r.status for r in results)
    face_frames = sum(r.face_frames for r in evaluated)
    face_frames_judged = sum(r.frames_judged for r in evaluated)
    faces = sum(r.faces for r in evaluated)
    faces_refused = sum(r.faces_refused for r in evaluated)
    refused: Counter = Counter()
    for r in evaluated:
        refused.update(r.refused_reasons)

    def by_label(label: str) -> float | None:
        pool = [r for r in evaluated if r.item.label == label]
        return _share(sum(r.status == "unknown" for r in pool), len(pool))

    def subset_block(fakes: list[FileResult]) -> dict:
        block = metric_block(reals + [r for r in fakes if r.status == "judged"], threshold,
                             still_threshold)
        block["files"] = len(fakes)
        block["unknown_files"] = sum(r.status == "unknown" for r in fakes)
        return block

    fakes = [r for r in evaluated if r.item.is_fake]
    methods = sorted({r.item.method_name for r in fakes})
    families = sorted({r.item.family for r in fakes})
    kinds = [k for k in ("video", "image") if any(r.item.kind == k for r in evaluated)]
    verdicts = {
        label: {v: sum(r.verdict == v for r in evaluated if r.item.label == label)
                for v in ("real", "fake", "unknown")}
        for label in ("real", "fake")
    }
    return {
        "schema": SCHEMA,
        "protocol": {
            **protocol,
            "threshold": round(threshold, 6),
            "still_threshold": round(still_threshold, 6),
            "frame_score": FRAME_RULE,
            "video_score": VIDEO_RULE,
            "comparisons": COMPARISON_RULE,
        },
        "counts": {
            "files": len(results),
            "real": sum(not r.item.is_fake for r in results),
            "fake": sum(r.item.is_fake for r in results),
            "judged": status["judged"],
            "unknown": status["unknown"],
            "missing": status["missing"],
            "failed": status["failed"],
            "frames_analysed": sum(r.frames_analysed for r in evaluated),
            "face_frames": face_frames,
            "face_frames_judged": face_frames_judged,
            "face_frames_unknown": face_frames - face_frames_judged,
            "faces": faces,
            "faces_refused": faces_refused,
        },
        "unknown": {
            "files": _share(len(unknown), len(evaluated)),
            "real_files": by_label("real"),
            "fake_files": by_label("fake"),
            "face_frames": _share(face_frames - face_frames_judged, face_frames),
            "faces": _share(faces_refused, faces),
            "file_reasons": dict(Counter(r.unknown_reason for r in unknown)),
            "refused_reasons": dict(refused),
        },
        "overall": metric_block(judged, threshold, still_threshold),
        "by_kind": {
            kind: metric_block([r for r in judged if r.item.kind == kind], threshold,
                               still_threshold)
            for kind in kinds
        },
        "per_method": {
            m: subset_block([r for r in fakes if r.item.method_name == m]) for m in methods
        },
        "per_family": {
            f: subset_block([r for r in fakes if r.item.family == f]) for f in families
        },
        "by_model": {
            role: _model_block([as_model(r, role) for r in evaluated], threshold, still_threshold)
            for role in model_roles(evaluated)
        },
        "agent_verdicts": verdicts,
        "alerts": alert_block(evaluated),
        "files": [file_row(r) for r in results],
    }


def _model_block(results: list[FileResult], threshold: float, still_threshold: float) -> dict:
    """One model's metrics: overall and per family, each family's fakes against all reals
    it judged. Accuracy is at the agent's (fused) threshold, so mostly informative for AUC."""
    judged = [r for r in results if r.status == "judged"]
    reals = [r for r in judged if not r.item.is_fake]
    families = sorted({r.item.family for r in judged if r.item.is_fake})
    kinds = sorted({r.item.kind for r in judged})
    return {
        "files": len(judged),
        "unknown_files": _share(len(results) - len(judged), len(results)),
        "overall": metric_block(judged, threshold, still_threshold),
        "by_kind": {
            kind: metric_block([r for r in judged if r.item.kind == kind], threshold,
                               still_threshold)
            for kind in kinds
        },
        "per_family": {
            f: metric_block(reals + [r for r in judged if r.item.is_fake and r.item.family == f],
                            threshold, still_threshold)
            for f in families
        },
    }


# -- sweeps ----------------------------------------------------------------------------------


def _aucs(report: dict | None) -> dict:
    """A report's (or one model's by_model block's) figures for a sweep cell; a model that
    judged nothing under a condition has none."""
    if report is None:
        return {"video_auc": None, "frame_auc": None, "unknown_files": 1.0,
                "video_auc_by_kind": {}}
    unknown = report["unknown"]["files"] if "unknown" in report else report.get("unknown_files")
    return {
        "video_auc": report["overall"]["video"]["auc"],
        "frame_auc": report["overall"]["frame"]["auc"],
        "unknown_files": unknown,
        "video_auc_by_kind": {k: b["video"]["auc"] for k, b in report.get("by_kind", {}).items()},
    }


def _mean(values: list[float | None]) -> float | None:
    """Mean, or None when any value is missing (a mean over fewer levels or types would not
    be comparable with one over all of them)."""
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return round(float(np.mean(values)), 4)


def _loss(clean: float | None, value: float | None) -> float | None:
    return None if clean is None or value is None else round(100.0 * (clean - value), 2)


def sweep_table(clean: dict | None, conditions: list[tuple[Perturbation, dict | None]]) -> dict:
    """AUC per type and level, per-type means over levels, and the mean over types, with
    the loss versus clean in AUC points (DeeperForensics-style reporting). A level where no
    AUC exists (every file of a class unknown) makes its type's mean null."""
    base = _aucs(clean)
    types: dict[str, dict] = {}
    for perturbation, report in conditions:
        entry = types.setdefault(perturbation.type, {"levels": {}})
        entry["levels"][str(perturbation.level)] = {
            "value": perturbation.info.value(perturbation.level), **_aucs(report)
        }
    for entry in types.values():
        levels = entry["levels"].values()
        for key in ("video_auc", "frame_auc"):
            entry[f"{key}_mean"] = _mean([lv[key] for lv in levels])
            entry[f"{key}_loss_points"] = _loss(base[key], entry[f"{key}_mean"])
        entry["unknown_files_mean"] = _mean([lv["unknown_files"] for lv in levels])
    mean = {}
    for key in ("video_auc", "frame_auc"):
        mean[key] = _mean([e[f"{key}_mean"] for e in types.values()])
        mean[f"{key}_loss_points"] = _loss(base[key], mean[key])
    return {"clean": base, "types": types, "mean": mean}


def build_sweep(protocol: dict, clean: dict, conditions: list[tuple[Perturbation, dict]]) -> dict:
    roles = list(clean.get("by_model", {})) if len(clean.get("by_model", {})) > 1 else []
    return {
        "schema": SWEEP_SCHEMA,
        "protocol": protocol,
        "table": sweep_table(clean, conditions),
        # Each fused model's own probability under the same conditions: one sweep measures the
        # fusion and every member (the spatial member scores exactly as it does alone).
        "by_model": {
            role: sweep_table(clean["by_model"][role],
                              [(p, r.get("by_model", {}).get(role)) for p, r in conditions])
            for role in roles
        },
        "conditions": [{"condition": "clean", "perturbation": None, "report": clean}]
        + [
            {"condition": p.spec, "perturbation": p.describe(), "report": r}
            for p, r in conditions
        ],
    }


# -- text ------------------------------------------------------------------------------------


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _short(name: str, width: int = 48) -> str:
    """Cut the middle of a long subset name: method variants often differ only at the end."""
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep - keep // 2] + "~" + name[len(name) - keep // 2 :]


def _interval(bounds) -> str:
    if not bounds or None in bounds:
        return "-"
    return f"{bounds[0]:.2f}-{bounds[1]:.2f}"


def _row(name: str, block: dict) -> str:
    f, v = block["frame"], block["video"]
    cells = [
        f"{_short(name):48}",
        f"{f['n']:>6} {_fmt(f['auc']):>6} {_fmt(f['ap']):>6} {_fmt(f['eer']):>6} "
        f"{_fmt(f['accuracy']):>6} {_fmt(f['log_loss']):>7}",
        f"{v['n']:>5} {_fmt(v['auc']):>6} {_fmt(v['ap']):>6} {_fmt(v['eer']):>6} "
        f"{_fmt(v['accuracy']):>6} {_fmt(v['log_loss']):>7} {_interval(v.get('auc_ci95')):>11}",
    ]
    if "unknown_files" in block:
        cells.append(f"{block['unknown_files']:>4}")
    return " | ".join(cells)


def model_rows(report: dict) -> list[tuple[str, int, dict, dict]]:
    """(score, files, overall block, per-family blocks): the fused score, then each model on
    its own; none when a single model decided (its figures are the fused ones)."""
    models = report.get("by_model", {})  # reports written before it was recorded lack it
    if len(models) < 2:
        return []
    rows = [("fused", report["counts"]["judged"], report["overall"], report["per_family"])]
    return rows + [(role, block["files"], block["overall"], block["per_family"])
                   for role, block in models.items()]


def _model_lines(report: dict) -> list[str]:
    """Video AUC per model next to the fused one, for the terminal."""
    rows = model_rows(report)
    if not rows:
        return []
    families = list(report["per_family"])
    head = f"{'model':10} {'files':>5} {'all':>6}" + "".join(f" {_short(f, 22):>22}" for f in families)
    lines = ["", "video AUC by model (each model's own probability, on the faces it judged):",
             head, "-" * len(head)]
    for name, files, overall, per_family in rows:
        lines.append(f"{name:10} {files:>5} {_fmt(overall['video']['auc']):>6}" + "".join(
            f" {_fmt(per_family[f]['video']['auc']) if f in per_family else '-':>22}"
            for f in families))
    return lines


def format_report(report: dict) -> str:
    """A plain-text summary of one run for the terminal."""
    c, u, p = report["counts"], report["unknown"], report["protocol"]
    lines = [
        f"{c['files']} files ({c['real']} real, {c['fake']} fake): {c['judged']} judged, "
        f"{c['unknown']} unknown, {c['missing']} missing, {c['failed']} failed",
        f"model {', '.join(f'{k} {v}' for k, v in p.get('models', {}).items())}; threshold "
        f"{p['threshold']:.3f}"
        + (f" (stills {p['still_threshold']:.3f})"
           if p.get("still_threshold", p["threshold"]) != p["threshold"] else "")
        + f" ({p.get('threshold_source', '')}); analysis "
        f"{p.get('analysis_fps')} fps"
        + (f", first {p['max_seconds']:g} s of each video" if p.get("max_seconds") else ""),
    ]
    if p.get("perturbation"):
        q = p["perturbation"]
        lines.append(f"perturbation {q['type']}:{q['level']} ({q['parameter']} {q['value']:g})")
    head = (
        f"{'subset':48} | {'frames':>6} {'AUC':>6} {'AP':>6} {'EER':>6} {'acc':>6} {'logloss':>7}"
        f" | {'files':>5} {'AUC':>6} {'AP':>6} {'EER':>6} {'acc':>6} {'logloss':>7} {'AUC 95%':>11}"
        " | unk"
    )
    lines += ["", head, "-" * len(head), _row("overall", report["overall"])]
    lines += [_row(f"kind {k}", b) for k, b in report["by_kind"].items()]
    lines += [_row(f"family {k}", b) for k, b in report["per_family"].items()]
    lines += [_row(f"method {k}", b) for k, b in report["per_method"].items()]
    lines += _model_lines(report)
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines += [
        "",
        f"unknown files {pct(u['files'])} (real {pct(u['real_files'])}, fake "
        f"{pct(u['fake_files'])}); face-frames with every face refused {pct(u['face_frames'])};"
        f" faces refused {pct(u['faces'])}",
    ]
    v = report["agent_verdicts"]
    lines.append(
        "agent verdicts: "
        + "; ".join(
            f"{label} files -> {v[label]['real']} real, {v[label]['fake']} fake, "
            f"{v[label]['unknown']} unknown"
            for label in ("real", "fake")
        )
    )
    summary = alert_summary(report)
    if summary:
        lines.append(f"alerts {summary}")
    return "\n".join(lines)


def alert_summary(report: dict) -> str | None:
    """"at threshold T: F of N fake videos (first alert at ...); R of M real videos", or None
    when the run had no videos (or predates the alerts block)."""
    alerts = report.get("alerts")
    if not alerts or not (alerts["fake_videos"]["files"] or alerts["real_videos"]["files"]):
        return None
    fake, real, first = alerts["fake_videos"], alerts["real_videos"], alerts["fake_first_alert_s"]
    when = ""
    if first and fake["alerting"] == 1:
        when = f" (first alert at {first['median']:.1f} s)"
    elif first:
        when = (f" (first alert at {first['median']:.1f} s median, {first['min']:.1f}-"
                f"{first['max']:.1f} s)")
    threshold = report["protocol"].get("threshold")
    at = f"at threshold {threshold:.4f}: " if threshold is not None else ""
    return (f"{at}{fake['alerting']} of {fake['files']} fake videos{when}; {real['alerting']} of "
            f"{real['files']} real videos")


def format_sweep(sweep: dict, role: str | None = None) -> str:
    """Video-level AUC (frame-level in brackets) per type and level, means and losses: of the
    agent's score, or of one fused model on its own (`role`, from the sweep's by_model)."""
    table = sweep["table"] if role is None else sweep["by_model"][role]
    levels = sorted({int(lv) for e in table["types"].values() for lv in e["levels"]})
    clean = table["clean"]
    head = f"{'type':14}" + "".join(f"{'level ' + str(lv):>16}" for lv in levels)
    head += f"{'mean':>16}{'loss (pts)':>14}{'unknown':>9}"
    lines = [
        f"video-level AUC (frame-level in brackets); clean {_fmt(clean['video_auc'])} "
        f"({_fmt(clean['frame_auc'])}), unknown files {_fmt(clean['unknown_files'], 2)}",
        "",
        head,
        "-" * len(head),
    ]
    for name, entry in table["types"].items():
        cells = []
        for lv in levels:
            cell = entry["levels"].get(str(lv))
            cells.append(
                f"{_fmt(cell['video_auc'])} ({_fmt(cell['frame_auc'])})" if cell else "-"
            )
        line = f"{name:14}" + "".join(f"{c:>16}" for c in cells)
        line += f"{_fmt(entry['video_auc_mean']) + ' (' + _fmt(entry['frame_auc_mean']) + ')':>16}"
        line += f"{_fmt(entry['video_auc_loss_points'], 1):>14}"
        line += f"{_fmt(entry['unknown_files_mean'], 2):>9}"
        lines.append(line)
    m = table["mean"]
    lines.append(
        f"{'mean':14}" + " " * 16 * len(levels)
        + f"{_fmt(m['video_auc']) + ' (' + _fmt(m['frame_auc']) + ')':>16}"
        + f"{_fmt(m['video_auc_loss_points'], 1):>14}"
    )
    if role is None and sweep.get("by_model"):
        lines += ["", *sweep_model_summary(sweep)]
    return "\n".join(lines)


def sweep_model_summary(sweep: dict) -> list[str]:
    """Clean and mean video AUC and the loss of the fused score and of each member alone."""
    head = f"{'score':14}{'clean':>10}{'mean':>10}{'loss (pts)':>14}"
    lines = ["video AUC by model (each model's own probability, same files and conditions)",
             head, "-" * len(head)]
    for name, table in [("fused", sweep["table"]), *sweep["by_model"].items()]:
        lines.append(f"{name:14}{_fmt(table['clean']['video_auc']):>10}"
                     f"{_fmt(table['mean']['video_auc']):>10}"
                     f"{_fmt(table['mean']['video_auc_loss_points'], 1):>14}")
    return lines


def to_json(document: dict) -> str:
    """Strict JSON: NaN/inf become null."""

    def clean(value):
        if isinstance(value, float):
            return None if math.isnan(value) or math.isinf(value) else value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    return json.dumps(clean(document), indent=2, allow_nan=False) + "\n"
