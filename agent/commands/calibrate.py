"""`verity calibrate`: set the alert threshold at a target false-alarm rate on real clips.

    verity calibrate --manifest DATA/manifest.csv --split validation [--target-per-hour 0.1]
                     [--write-card]

Runs the real videos of the manifest through the agent's pipeline, measures how many alerts
the rolling scorer would raise per stream-hour at each threshold (on the clips and on a
block bootstrap of them, see agent/evaluation/false_alarms.py), picks the smallest threshold
meeting the target, and reports how many of the fake videos would then alert, and how fast.
`--write-card` stores the result in the model pack's card.json (`alert_threshold`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="set the alert threshold at a target false-alarm rate measured on real clips",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, required=True, help="CSV with path,label[,method,group]")
    parser.add_argument("--split", choices=["validation", "train"], help="keep one side of the training split")
    parser.add_argument("--split-config", type=Path, help="training config defining the split")
    parser.add_argument("--target-per-hour", type=float, default=0.1,
                        help="false alerts per stream-hour of real footage (default 0.1: 1 per 10 h)")
    parser.add_argument("--bootstrap-hours", type=float, default=100.0, help="synthetic real hours (default 100)")
    parser.add_argument("--block-seconds", type=float, default=5.0, help="bootstrap block length (default 5)")
    parser.add_argument("--max-seconds", type=float, help="analyse at most this much of each clip")
    parser.add_argument("--operating-points", type=_rates, default=[], metavar="RATES",
                        help="also report the threshold for these other false-alert rates per "
                             "hour (comma-separated, e.g. 1,10) and the fakes alerting at each; "
                             "the threshold stored stays --target-per-hour's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the full result here")
    parser.add_argument("--write-card", action="store_true",
                        help="store the threshold in the deciding model's card.json (temporal when fused)")
    add_config_args(parser)
    parser.set_defaults(handler=calibrate_command)


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of rates") from None
    if not rates or any(not (r > 0) for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: each rate must be above 0 alerts per hour")
    return rates


def fakes_alerting(fake_clips: list, scoring, threshold: float) -> list[dict]:
    """Per fake clip: whether the product's rolling score alerts at `threshold`, and when."""
    from agent.evaluation.false_alarms import first_alert_times

    out = []
    for clip in fake_clips:
        times = first_alert_times(clip.tracks, scoring, threshold)
        out.append({"file": clip.source, "alerted": bool(times),
                    "first_alert_s": min(times) if times else None})
    return out


def scorer_for_pack(config, pack: Path):
    """A FaceScorer whose deep model is `pack` (a manifest row's own head)."""
    from agent.pipeline import FaceScorer
    from engines.registry import PackError

    if config.models.deep is None:
        raise CommandError(f"the manifest names a deep pack ({pack}) but models.deep is null")
    try:
        return FaceScorer(config.models.model_copy(update={"deep": str(pack)}))
    except PackError as exc:
        raise CommandError(f"manifest pack {pack}: {exc}") from None


def nearest_real_clips(real_clips: list, scoring, n: int = 10) -> list[dict]:
    """The real clips whose rolling score came highest: the false alarms to study first."""
    from agent.evaluation.false_alarms import rolling_values

    peaks = []
    for clip in real_clips:
        values = [v for t in clip.tracks for v in rolling_values(t, scoring).tolist()]
        if values:
            peaks.append({"file": clip.source, "max_rolling": round(max(values), 4)})
    return sorted(peaks, key=lambda p: -p["max_rolling"])[:n]


def _median_first_alert(alerted: list[dict]) -> float | None:
    hits = sorted(a["first_alert_s"] for a in alerted if a["alerted"])
    return hits[len(hits) // 2] if hits else None


def calibrate_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    setup_logging(args.log_level or "WARNING")
    from tqdm import tqdm

    from agent.evaluation import ManifestError, load_split_rule, read_eval_manifest, select_split
    from agent.evaluation.false_alarms import choose_threshold, record_clip
    from agent.pipeline import FaceScorer
    from agent.scoring.rolling import rolling_settings
    from engines.faces import create_detector
    from engines.registry import AlertThreshold, write_card

    if config.scoring.threshold is not None:
        raise CommandError("scoring.threshold is set in the config: unset it to calibrate the model's own")
    try:
        items = read_eval_manifest(args.manifest)
        if args.split:
            items = select_split(items, args.split, load_split_rule(args.split_config))
    except ManifestError as exc:
        raise CommandError(str(exc)) from None
    videos = [i for i in items if i.kind == "video"]
    reals = [i for i in videos if i.label == "real"]
    fakes = [i for i in videos if i.label == "fake"]
    if not reals:
        raise CommandError("no real videos to calibrate on")
    scorer = FaceScorer(config.models)
    detector = create_detector(config.faces.detector)
    clips = []
    # Rows naming a pack (cross-fitted or left-out heads) are scored by it, one pack at a time
    # so that only one extra backbone session is alive.
    ordered = sorted(reals + fakes, key=lambda i: str(i.pack or ""))
    pack_scorer: tuple[Path | None, FaceScorer] = (None, scorer)
    packs_used: Counter = Counter()  # (label, which head) of every clip recorded
    for item in tqdm(ordered, desc="clips", unit="clip", file=sys.stderr):
        if not item.path.is_file():
            print(f"verity calibrate: skipping {item.rel}: no such file", file=sys.stderr)
            continue
        if item.pack != pack_scorer[0]:
            pack_scorer = (item.pack, scorer if item.pack is None else
                           scorer_for_pack(config, item.pack))
        try:
            clips.append(record_clip(item, config, detector, pack_scorer[1], args.max_seconds))
        except ValueError as exc:
            print(f"verity calibrate: skipping {item.rel}: {exc}", file=sys.stderr)
            continue
        packs_used[(item.label, "own pack" if item.pack else "configured")] += 1
    real_clips = [c for c in clips if c.label == "real"]
    fake_clips = [c for c in clips if c.label == "fake"]
    real_tracks = [t for c in real_clips for t in c.tracks]
    hours = sum(c.duration_s for c in real_clips) / 3600.0
    choice = choose_threshold(
        real_tracks, hours, config.scoring, args.target_per_hour, args.bootstrap_hours,
        args.block_seconds, args.seed, progress=lambda msg: print(msg, file=sys.stderr),
    )
    alerted = fakes_alerting(fake_clips, config.scoring, choice.threshold)
    hits = [a for a in alerted if a["alerted"]]
    # Other false-alert rates a deployment might accept, each chosen the same way (reals only).
    operating_points = []
    for rate in sorted({args.target_per_hour, *args.operating_points}):
        point = choice if rate == args.target_per_hour else choose_threshold(
            real_tracks, hours, config.scoring, rate, args.bootstrap_hours, args.block_seconds,
            args.seed)
        caught = fakes_alerting(fake_clips, config.scoring, point.threshold)
        operating_points.append({
            "target_alerts_per_hour": rate, "threshold": round(point.threshold, 4),
            "fake_clips": len(caught), "fake_alerted": sum(a["alerted"] for a in caught),
            "median_first_alert_s": _median_first_alert(caught),
        })
    result = {
        "threshold": round(choice.threshold, 4),
        "real_clips_nearest": nearest_real_clips(real_clips, config.scoring),
        "target_alerts_per_hour": args.target_per_hour,
        "real": {
            "clips": len(real_clips),
            "stream_hours": round(hours, 4),
            "tracks": len(real_tracks),
            "alerts_at_threshold": choice.observed_alerts,
            "bootstrap_hours": round(choice.bootstrap_hours, 1),
            "bootstrap_block_s": args.block_seconds,
            "bootstrap_alerts_at_threshold": choice.bootstrap_alerts,
            "bootstrap_threshold": round(choice.bootstrap_threshold, 4),
            "extreme_value": choice.extreme_value,
        },
        "fake": {
            "clips": len(fake_clips),
            "alerted": len(hits),
            "median_first_alert_s": _median_first_alert(alerted),
            "files": alerted,
        },
        "operating_points": operating_points,
        "scoring": config.scoring.model_dump(),
        "models": scorer.model_ids,
        "clips_by_pack": {f"{label}/{who}": n for (label, who), n in sorted(packs_used.items())},
        "curve": choice.curve,
    }
    print(
        f"alert threshold {choice.threshold:.4f} for <= {args.target_per_hour:g} false alerts per "
        f"stream-hour: {choice.observed_alerts} alert(s) in {hours * 60:.1f} min of {len(real_clips)} "
        f"real clips, {choice.bootstrap_alerts} in {choice.bootstrap_hours:.0f} bootstrap hours; "
        f"{len(hits)} of {len(fake_clips)} fake clips alert at it"
    )
    if len(operating_points) > 1:
        print(format_operating_points(operating_points))
    if result["real_clips_nearest"]:
        print("real clips whose rolling score came highest (false alarms to study first):")
        for peak in result["real_clips_nearest"][:5]:
            print(f"  {peak['max_rolling']:.4f}  {peak['file']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_card:
        pack = scorer.decision_pack
        gate = ", ".join(f"{k}={v:g}" for k, v in config.faces.quality.model_dump().items())
        method = (
            f"verity calibrate: {len(real_clips)} real clips ({hours * 60:.1f} min; "
            f"{_provenance(packs_used)}) through the "
            f"agent's pipeline and RollingScore (half_life_s={config.scoring.half_life_s}, "
            f"min_duration_s={config.scoring.min_duration_s}, clear_margin={config.scoring.clear_margin}, "
            f"analysis_fps={config.ingest.analysis_fps}), quality gate ({gate}); rate also estimated on a "
            f"{choice.bootstrap_hours:.0f} h block bootstrap ({args.block_seconds:g} s blocks) of those "
            "clips, and extrapolated beyond them by a GEV fit to 10 s maxima of the rolling score "
            "(the larger threshold wins). Only real clips chose it; fakes were scored afterwards."
        )
        card = pack.card.model_copy(update={"alert_threshold": AlertThreshold(
            value=round(choice.threshold, 4), target_alerts_per_hour=args.target_per_hour,
            method=method,
            measured={k: result[k] for k in ("real", "fake", "operating_points")} | {
                "curve": choice.curve, "rolling": rolling_settings(config.scoring, config.ingest.analysis_fps),
                "quality": config.faces.quality.model_dump(),
                "models": scorer.model_ids} | (
                {"deep": config.models.deep_settings()} if scorer.deep is not None else {}),
        )})
        card.alert_threshold.measured["fake"] = {k: v for k, v in result["fake"].items() if k != "files"}
        write_card(pack.folder, card)
        print(f"wrote alert_threshold to {pack.folder / 'card.json'}")
        readme = pack.folder / "MODEL_CARD.md"
        if readme.is_file():
            readme.write_text(with_alert_section(readme.read_text(), card.alert_threshold, args,
                                                 models=config.models))
            print(f"updated {readme}")
    return 0


def _provenance(used: Counter) -> str:
    """Which heads scored the clips, for the card."""
    own_real, shipped_real = used[("real", "own pack")], used[("real", "configured")]
    own_fake = used[("fake", "own pack")]
    parts = [f"{shipped_real} never trained on, scored by the shipped head"]
    if own_real:
        parts.append(f"{own_real} from training groups, each scored by a cross-fitted head "
                     "trained without its group")
    if own_fake:
        parts.append(f"fakes scored by the head that left their family out ({own_fake})")
    return "; ".join(parts)


ALERT_SECTION = "## Alert threshold (verity calibrate)"


def format_operating_points(points: list[dict]) -> str:
    """Markdown table: per false-alert rate, its threshold and the fakes alerting at it."""
    lines = ["| false alerts per stream-hour (target) | threshold | fake clips alerting "
             "| median first alert (s) |", "| --- | --- | --- | --- |"]
    for p in points:
        first = p["median_first_alert_s"]
        lines.append(f"| {p['target_alerts_per_hour']:g} | {p['threshold']:.4f} | "
                     f"{p['fake_alerted']} of {p['fake_clips']} | "
                     f"{'-' if first is None else f'{first:.1f}'} |")
    return "\n".join(lines)

if TYPE_CHECKING:
    from engines.registry import AlertThreshold


def _round(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "n/a"


def _argv(args) -> list[str]:
    """The options that chose the threshold, as a command line (for the model card)."""
    argv = ["calibrate", "--manifest", str(args.manifest)]
    for option in ("split", "split_config", "target_per_hour", "max_seconds", "config"):
        value = getattr(args, option, None)
        if value is not None:
            argv += ["--" + option.replace("_", "-"),
                     f"{value:g}" if isinstance(value, float) else str(value)]
    if getattr(args, "operating_points", None):
        argv += ["--operating-points", ",".join(f"{r:g}" for r in args.operating_points)]
    return argv


def with_alert_section(text: str, threshold: AlertThreshold, args, models=None) -> str:
    """The model card's text with its alert-threshold section written (replaced if present),
    before Limitations; `models`: the config's models section the run used."""
    from agent.evaluation.card_sections import command_line, model_overrides, with_section

    real, fake = threshold.measured["real"], threshold.measured["fake"]
    body = "\n".join([
        f"The agent alerts when a track's rolling score reaches **{threshold.value}**, chosen for at "
        f"most {threshold.target_alerts_per_hour:g} false alerts per stream-hour of real footage.",
        "",
        "```",
        command_line(_argv(args), model_overrides(models) if models is not None else ()),
        "```",
        "",
        threshold.method,
        "",
        f"- real: {real['clips']} clips, {real['stream_hours'] * 60:.1f} stream-minutes, "
        f"{real['tracks']} tracks; alerts at the threshold: {real['alerts_at_threshold']} on the "
        f"clips, {real['bootstrap_alerts_at_threshold']} in {real['bootstrap_hours']:g} bootstrap "
        f"hours (bootstrap threshold {real['bootstrap_threshold']}, extreme-value fit "
        f"{_round(real.get('extreme_value', {}).get('threshold'))})",
        f"- fake: {fake['alerted']} of {fake['clips']} fake clips alert at it"
        + (f" (median first alert {fake['median_first_alert_s']} s)" if fake["alerted"] else ""),
        *_operating_lines(threshold.measured.get("operating_points") or []),
        "- A few minutes of real footage cannot show a rate of 1 per 10 hours directly: the "
        "bootstrap and the extreme-value fit extrapolate from them. Re-run on the footage of "
        "the deployment for a threshold that holds there.",
    ])
    return with_section(text, ALERT_SECTION, body)


def _operating_lines(points: list[dict]) -> list[str]:
    if len(points) < 2:
        return []
    return ["- operating points: the threshold each false-alert rate would take, chosen the "
            "same way (real clips only), and the fake clips alerting at it:", "",
            format_operating_points(points), ""]
