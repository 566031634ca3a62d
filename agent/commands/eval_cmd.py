"""`verity eval --manifest CSV`: how well the agent separates real from fake, clean or perturbed.

Runs the agent's own pipeline on every file of a labelled manifest and reports frame- and
video-level AUC, AP, EER, accuracy and log-loss at the shipped threshold, overall, per kind,
per method and per method family, with the share of files and face-frames it could not
judge. `--perturb TYPE:LEVEL` degrades every file first; `--sweep` runs clean plus every
type x level and prints the robustness table. Exit status: 0, 1 when some files were
missing or failed (each is reported; the rest are still evaluated), 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure the agent on a labelled manifest (AUC, AP, EER...), clean or perturbed",
        description="Judge every file of a labelled manifest with the agent's own pipeline and "
        "report frame- and video-level metrics at the shipped threshold.",
    )
    parser.add_argument("--manifest", type=Path, help="CSV with path,label[,method,group,kind]; "
                        "paths relative to its folder")
    parser.add_argument("--write-card", action="store_true",
                        help="write the figures (a sweep: its table) with this command line into "
                        "the deciding model pack's MODEL_CARD.md")
    parser.add_argument("--json", metavar="OUT",
                        help="write the full JSON report here ('-': stdout)")
    what = parser.add_argument_group("perturbations")
    what.add_argument("--perturb", metavar="TYPE:LEVEL", help="degrade every file, e.g. blur:3")
    what.add_argument("--sweep", action="store_true",
                      help="clean, then every type x level: prints the robustness table")
    what.add_argument("--types", help="sweep: comma-separated types (default: all)")
    what.add_argument("--levels", help="sweep: comma-separated levels 1..5 (default: all)")
    what.add_argument("--seed", type=int, default=0, help="seed of the random perturbations "
                      "and of --limit's draw (default 0)")
    what.add_argument("--list-perturbations", action="store_true",
                      help="print the perturbation types and their levels, then exit")
    subset = parser.add_argument_group("which files")
    subset.add_argument("--split", choices=["validation", "train"],
                        help="keep one side of a training config's group split")
    subset.add_argument("--split-config", type=Path,
                        help="training config whose `split:` defines it (default "
                        "configs/train/spatial-sbi.yaml)")
    subset.add_argument("--kind", choices=["video", "image"], help="only videos or only stills")
    subset.add_argument("--limit", type=_positive_int, metavar="N",
                        help="at most N files, drawn with --seed, reals and fakes alternately")
    cost = parser.add_argument_group("cost and protocol")
    cost.add_argument("--max-seconds", type=_positive_float, metavar="S",
                      help="judge only the first S seconds of each video")
    cost.add_argument("--analysis-fps", type=_positive_float, metavar="F",
                      help="frames analysed per second of video (default: ingest.analysis_fps)")
    cost.add_argument("--stills-size", type=_positive_int, metavar="PX",
                      help="downscale every still (both classes) to at most PX on its longer side")
    cost.add_argument("--stills-eye", type=_positive_float, metavar="PX",
                      help="downscale every still so its largest face's eye distance is PX "
                      "(the model card's protocol: 48)")
    cost.add_argument("--stills-jpeg", type=_quality, metavar="Q",
                      help="then re-encode every still as JPEG at quality Q (model card: 90)")
    cost.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(parser)
    parser.set_defaults(handler=eval_command)


def _argv(args: argparse.Namespace) -> list[str]:
    """The options that shaped the figures, as a command line (for the model card)."""
    argv = ["eval", "--manifest", str(args.manifest)]
    for option in ("split", "split_config", "kind", "limit", "max_seconds", "analysis_fps",
                   "stills_size", "stills_eye", "stills_jpeg", "perturb", "types", "levels", "config"):
        value = getattr(args, option, None)
        if value is not None:
            argv += ["--" + option.replace("_", "-"), f"{value:g}" if isinstance(value, float) else str(value)]
    if args.sweep:
        argv.append("--sweep")
    if args.seed:
        argv += ["--seed", str(args.seed)]
    return argv


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"JPEG quality {value} is above 100")
    return value


def _conditions(args: argparse.Namespace) -> list:
    """What to run: [None] (clean), [one Perturbation], or a sweep: [None, every type x level]."""
    from agent.evaluation import Perturbation
    from engines.perturbations import LEVELS, TYPES

    if (args.types or args.levels) and not args.sweep:
        raise CommandError("--types and --levels go with --sweep")
    if args.sweep and args.perturb:
        raise CommandError("--sweep runs every perturbation; drop --perturb (or use --types)")
    try:
        if args.perturb:
            return [Perturbation.parse(args.perturb)]
        if not args.sweep:
            return [None]
        types = list(TYPES)
        if args.types:
            types = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = [t for t in types if t not in TYPES]
        if unknown or not types:
            raise ValueError(
                f"unknown perturbation type(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"known: {', '.join(TYPES)}"
            )
        levels = list(LEVELS)
        if args.levels:
            try:
                levels = [int(x) for x in args.levels.split(",") if x.strip()]
            except ValueError:
                raise ValueError(
                    f"--levels {args.levels!r}: expected levels from "
                    f"{', '.join(map(str, LEVELS))}, comma-separated"
                ) from None
        return [None] + [Perturbation(t, lv) for t in types for lv in levels]
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _select(args: argparse.Namespace, items: list, scorer) -> tuple[list, dict | None]:
    from agent.evaluation import limit_items, load_split_rule, select_split

    split_info = None
    if args.split:
        rule = load_split_rule(args.split_config)
        items = select_split(items, args.split, rule)
        card_split = scorer.spatial_pack.card.training.get("data", {}).get("split", {})
        side = card_split.get("val" if args.split == "validation" else "train", {})
        card_groups = side.get("groups") if isinstance(side, dict) else None
        groups = len({i.group for i in items})
        split_info = {
            "side": args.split,
            "config": rule.config,
            "val_fraction": rule.val_fraction,
            "seed": rule.seed,
            "train_fakes": rule.train_fakes,
            "config_had_split_section": not rule.from_defaults,
            "files": len(items),
            "groups": groups,
            "model_card_groups": card_groups,
        }
        if card_groups is not None and card_groups != groups:
            print(f"verity eval: warning: the {args.split} side has {groups} groups here but "
                  f"{card_groups} in the model card: not the manifest or split the model was "
                  "validated on", file=sys.stderr)
    if args.kind:
        items = [i for i in items if i.kind == args.kind]
    if args.limit:
        items = limit_items(items, args.limit, args.seed)
    if not items:
        raise CommandError("no files left to evaluate after --split/--kind/--limit")
    return items, split_info


def eval_command(args: argparse.Namespace) -> int:
    if args.list_perturbations:
        from engines.perturbations import describe_types

        print(describe_types())
        return 0
    if args.manifest is None:
        raise CommandError("--manifest CSV is required (or --list-perturbations)")
    conditions = _conditions(args)
    overrides = {"ingest": {"analysis_fps": args.analysis_fps}} if args.analysis_fps else {}
    config = config_from_args(args, **overrides)
    setup_logging(args.log_level or "WARNING")
    try:
        import sklearn  # noqa: F401  (engines.metrics needs it)
    except ImportError:
        raise CommandError("verity eval needs scikit-learn: pip install scikit-learn") from None
    from tqdm import tqdm

    from agent.evaluation import (
        Evaluator,
        ManifestError,
        StillsPolicy,
        build_report,
        build_sweep,
        format_report,
        format_sweep,
        read_eval_manifest,
        to_json,
    )
    from engines.faces.detectors.base import DetectorUnavailable
    from engines.registry import PackError

    started = time.monotonic()
    try:
        items = read_eval_manifest(args.manifest)
    except ManifestError as exc:
        raise CommandError(str(exc)) from None
    stills = StillsPolicy(args.stills_size, args.stills_eye, args.stills_jpeg)
    try:
        evaluator = Evaluator(config, max_seconds=args.max_seconds, stills=stills, seed=args.seed)
    except (PackError, DetectorUnavailable, ValueError) as exc:
        raise CommandError(str(exc)) from None
    total_files = len(items)
    try:
        items, split_info = _select(args, items, evaluator.scorer)
    except ManifestError as exc:
        raise CommandError(str(exc)) from None
    labels_of_stills = {i.label for i in items if i.kind == "image"}
    if len(labels_of_stills) == 2 and stills == StillsPolicy():
        print("verity eval: note: stills are judged as stored; real photos and generated stills "
              "often differ in size and compression, so a still AUC may measure the file "
              "format. --stills-eye 48 --stills-jpeg 90 re-encodes both classes alike (the "
              "model card's protocol).", file=sys.stderr)

    protocol = {
        "manifest": str(args.manifest),
        "manifest_files": total_files,
        "split": split_info,
        "kind": args.kind,
        "limit": args.limit,
        "files": len(items),
        "seed": args.seed,
        "models": evaluator.scorer.model_ids,
        "threshold_source": evaluator.threshold_source,
        "detector": config.faces.detector.model_dump(mode="json"),
        "analysis_fps": config.ingest.analysis_fps,
        "detect_every": config.faces.detect_every,
        "quality": config.faces.quality.model_dump(),
        "max_seconds": args.max_seconds,
        "stills": stills.describe(),
    }
    problems: dict[str, str] = {}  # file -> missing | failed, each reported once
    bar = tqdm(total=len(items) * len(conditions), unit="file", disable=args.no_progress,
               file=sys.stderr, dynamic_ncols=True)

    condition = "clean"

    def on_result(result) -> None:
        bar.update(1)
        if result.status in ("missing", "failed") and result.item.rel not in problems:
            problems[result.item.rel] = result.status
            bar.write(f"verity eval: {result.item.rel}: {result.status} ({condition}): "
                      f"{result.error}", file=sys.stderr)

    reports = []
    try:
        for perturbation in conditions:
            condition = perturbation.spec if perturbation else "clean"
            bar.set_description(condition)
            condition_started = time.monotonic()
            results = evaluator.run(items, perturbation, on_result)
            reports.append(build_report(results, threshold=evaluator.threshold,
                                        still_threshold=evaluator.still_threshold, protocol={
                **protocol,
                "perturbation": perturbation.describe() if perturbation else None,
                "wall_time_s": round(time.monotonic() - condition_started, 1),
            }))
    finally:
        bar.close()

    if args.sweep:
        document = build_sweep(
            {**protocol, "levels_run": sorted({p.level for p in conditions if p}),
             "types_run": list(dict.fromkeys(p.type for p in conditions if p)),
             "wall_time_s": round(time.monotonic() - started, 1)},
            reports[0], list(zip(conditions[1:], reports[1:])),
        )
        text = format_report(reports[0]) + "\n\n" + format_sweep(document)
    else:
        document = reports[0]
        text = format_report(document)
    if args.json == "-":
        sys.stdout.write(to_json(document))
    else:
        print(text)
        if args.json:
            try:
                Path(args.json).write_text(to_json(document))
            except OSError as exc:
                raise CommandError(
                    f"--json {args.json}: cannot write it ({exc.strerror})"
                ) from None
            print(f"JSON report: {args.json}")
    if args.write_card:
        from agent.evaluation import card_sections as cards

        command = cards.command_line(_argv(args), cards.model_overrides(evaluator.scorer.config))
        # A stills-only run measured the pack that judges stills; otherwise the deciding one.
        scorer = evaluator.scorer
        pack = scorer.still_pack if args.kind == "image" else scorer.decision_pack
        card_md = pack.folder / "MODEL_CARD.md"
        if args.sweep:
            cards.write_section(card_md, cards.SWEEP_TITLE, cards.sweep_body(
                format_sweep(document), command, document["protocol"]["wall_time_s"]))
            # A fused run measured each member too: its own table goes into its own card.
            member_packs = {"spatial": scorer.spatial_pack, "stills": scorer.stills_pack}
            for role in document["by_model"]:
                member = member_packs.get(role)
                if member is None or member.folder == pack.folder:
                    continue
                member_md = member.folder / "MODEL_CARD.md"
                cards.write_section(member_md, cards.SWEEP_TITLE, cards.member_sweep_body(
                    format_sweep(document, role), command, role, pack.id,
                    document["protocol"]["wall_time_s"]))
                print(f"updated {member_md}")
        else:
            cards.write_section(card_md, cards.EVAL_TITLE, cards.eval_body(document, command))
        print(f"updated {card_md}")
    if problems:
        missing = sum(1 for status in problems.values() if status == "missing")
        raise CommandError(
            f"{len(problems)} of {len(items)} files could not be evaluated ({missing} missing, "
            f"{len(problems) - missing} failed); each is listed above", code=1,
        )
    return 0
