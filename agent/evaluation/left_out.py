"""Each fake family measured through the agent by a deep head that never saw it.

`verity train deep --fold-packs DIR` writes, per fold, the head trained without that family
(DIR/<fold>/) and the files its figure is measured on (DIR/<fold>/eval.csv: the family's fakes,
the validation reals and the left-out groups' reals). This runs `verity eval` on each fold with
its own head, at the shipped pack's alert threshold, and tables the results next to the
detection targets:

    python -m agent.evaluation.left_out --folds DIR [--pack deep-clip] [--write-card]
    python -m agent.evaluation.left_out --folds DIR --perturb jpeg:3 [--videos-only]

`--perturb TYPE:LEVEL` degrades every file as `verity eval --perturb` does (robustness of the
left-out figures); its reports are kept beside the clean ones (<fold>.<type>-<level>.eval.json)
and never written into the card.

Stills are normalised as the trainer's crops were (48 px eye distance, JPEG 90).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from agent.evaluation.card_sections import write_section

TITLE = "## Through the agent, each family left out (python -m agent.evaluation.left_out)"
TARGET_VIDEO, TARGET_STILL, TARGET_ALERT_SHARE = 0.90, 0.95, 0.60
STILL_OPTIONS = ["--stills-eye", "48", "--stills-jpeg", "90"]


def fold_kind(manifest: Path) -> str:
    import csv

    with open(manifest, newline="") as handle:
        kinds = {row["kind"] for row in csv.DictReader(handle) if row["label"] == "fake"}
    return "image" if kinds == {"image"} else "video"


def run_fold(fold_dir: Path, threshold: float, out: Path, perturb: str | None = None) -> dict:
    """`verity eval` of one fold's files with that fold's head, at `threshold` (every file
    degraded by `perturb`, TYPE:LEVEL, when given)."""
    manifest = fold_dir / "eval.csv"
    kind = fold_kind(manifest)
    env = {**os.environ, "VERITY_MODELS__DEEP": str(fold_dir),
           "VERITY_SCORING__THRESHOLD": f"{threshold}"}
    command = [sys.executable, "-m", "agent.cli", "eval", "--manifest", str(manifest), "--kind",
               kind, "--no-progress", "--json", str(out)] + (STILL_OPTIONS if kind == "image" else [])
    if perturb:
        command += ["--perturb", perturb]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"verity eval on {fold_dir.name} failed: {done.stderr.strip()[-500:]}")
    return json.loads(out.read_text())


def row(fold: str, report: dict) -> dict:
    video = report["overall"]["video"]
    alerts = report["alerts"]
    kind = "image" if set(report.get("by_kind") or {}) == {"image"} else "video"
    return {"fold": fold, "kind": kind, "auc": video["auc"], "auc_ci95": video["auc_ci95"],
            "fakes": video["n_fake"], "reals": video["n_real"],
            "fake_alert_share": alerts["fake_videos"]["share"] if kind == "video" else None,
            "real_alert_share": alerts["real_videos"]["share"] if kind == "video" else None,
            "fake_stills_flagged": _still_share(report) if kind == "image" else None}


def _still_share(report: dict) -> float | None:
    verdicts = report.get("agent_verdicts", {}).get("fake", {})
    total = sum(verdicts.values())
    return round(verdicts.get("fake", 0) / total, 4) if total else None


def table(rows: list[dict], threshold: float) -> str:
    lines = [
        f"Each row: the fold's head (trained without that family's groups) through the agent on "
        f"the family's files and the reals it was measured against, at the shipped alert "
        f"threshold {threshold} (videos: a fake alerts when its rolling score holds above it; "
        f"stills: judged fake at it). Targets: video AUC >= {TARGET_VIDEO:.2f} per family, "
        f"stills >= {TARGET_STILL:.2f}, >= {TARGET_ALERT_SHARE:.0%} of fake videos alerting.",
        "",
        "| left out | kind | fakes | reals | AUC (95% interval) | AUC target | met | fakes alerting / flagged | reals alerting |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        target = TARGET_STILL if r["kind"] == "image" else TARGET_VIDEO
        low, high = r["auc_ci95"]
        caught = r["fake_alert_share"] if r["kind"] == "video" else r["fake_stills_flagged"]
        caught_text = "-" if caught is None else f"{caught:.0%}"
        reals_text = "-" if r["real_alert_share"] is None else f"{r['real_alert_share']:.0%}"
        lines.append(
            f"| {r['fold']} | {r['kind']} | {r['fakes']} | {r['reals']} | {r['auc']:.3f} "
            f"({low:.2f}-{high:.2f}) | {target:.2f} | {'yes' if r['auc'] >= target else 'no'} | "
            f"{caught_text} | {reals_text} |")
    videos = [r for r in rows if r["kind"] == "video"]
    if videos:
        fakes = sum(r["fakes"] for r in videos)
        alerting = sum(round(r["fake_alert_share"] * r["fakes"]) for r in videos)
        lines += ["", f"Fake videos alerting over all video folds: {alerting} of {fakes} "
                      f"(target >= {TARGET_ALERT_SHARE:.0%})."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", required=True, type=Path,
                        help="the --fold-packs folder of verity train deep")
    parser.add_argument("--pack", default="deep-clip", help="the shipped deep pack (threshold, card)")
    parser.add_argument("--collect", action="store_true",
                        help="table the reports already in the folds folder instead of running")
    parser.add_argument("--write-card", action="store_true", help="write the table into the pack's card")
    parser.add_argument("--perturb", metavar="TYPE:LEVEL",
                        help="degrade every file (verity eval --perturb); not written to the card")
    parser.add_argument("--videos-only", action="store_true", help="only the video folds")
    args = parser.parse_args(argv)
    if args.perturb and args.write_card:
        parser.error("--write-card takes the clean figures only: drop --perturb")
    from engines.registry import PackError, resolve_pack

    try:
        pack = resolve_pack(args.pack)
    except PackError as exc:
        print(f"left_out: {exc}", file=sys.stderr)
        return 2
    if pack.card.alert_threshold is None:
        print(f"left_out: {pack.id} has no alert threshold yet: run verity calibrate first",
              file=sys.stderr)
        return 2
    threshold = pack.card.alert_threshold.value
    folds = sorted(p for p in args.folds.iterdir() if (p / "eval.csv").is_file())
    if not folds:
        print(f"left_out: no <fold>/eval.csv under {args.folds}", file=sys.stderr)
        return 2
    if args.videos_only:
        folds = [f for f in folds if fold_kind(f / "eval.csv") == "video"]
    suffix = f".{args.perturb.replace(':', '-')}" if args.perturb else ""
    rows = []
    for fold in folds:
        out = args.folds / f"{fold.name}{suffix}.eval.json"
        report = (json.loads(out.read_text()) if args.collect
                  else run_fold(fold, threshold, out, args.perturb))
        rows.append(row(fold.name, report))
        print(f"{fold.name}: AUC {rows[-1]['auc']:.3f}", flush=True)
    text = table(rows, threshold)
    if args.perturb:
        text = f"Every file degraded by {args.perturb} (verity eval --perturb).\n\n" + text
    print(text)
    if args.write_card:
        write_section(pack.folder / "MODEL_CARD.md", TITLE,
                      text + "\n\n```\npython -m agent.evaluation.left_out --folds FOLDS\n```\n"
                      "FOLDS: the `--fold-packs` folder of `verity train deep --config "
                      "configs/train/deep-clip.yaml --data DATA --fold-packs FOLDS`.")
        print(f"updated {pack.folder / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
