"""The spatial model's trade between input size, architecture and CPU cost, measured.

Each variant of `engines.export.SWEEP` (input size, widths, depths) is trained with the same
recipe, data, split and seed on a short schedule (one stage of `--epochs`), exported and
validated exactly as the shipped model is; one table then sets its cost (multiply-adds,
ONNX Runtime ms per face) against what it learned (validation self-blend AUC) and what it
detects (video AUC per fake family, every method unseen). A short schedule ranks the
variants; the shipped figures come from the full recipe (the training config's stages).

    python -m engines.train.arch_trade --config configs/train/spatial-sbi.yaml --data DIR \\
        --work runs/arch-trade [--variants B128,A128,A160] [--epochs 10] [--write-card PACK]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from pathlib import Path

import yaml

log = logging.getLogger("verity.train.arch_trade")

TITLE = "## Architecture trade (python -m engines.train.arch_trade)"
FAMILIES = ("lip_sync", "talking_head", "talking_head_synthesis", "gan_face")


def variant_config(cfg: dict, variant: str, epochs: int, seed: int | None = None) -> dict:
    """`cfg` with the variant's input size, widths and depths, one stage of `epochs`, and
    the training seed when given (the split keeps its own `split.seed`)."""
    from engines.export import SWEEP

    if variant not in SWEEP:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(SWEEP)}")
    size, widths, depths = SWEEP[variant]
    out = copy.deepcopy(cfg)
    out["name"] = f"{cfg.get('name', 'spatial')}-{variant.lower()}"
    out["version"] = f"trade-{epochs}ep"
    out["input"]["size"] = size
    out["model"]["widths"] = list(widths)
    out["model"]["depths"] = list(depths)
    out["train"]["epochs"] = epochs
    out["train"].pop("stages", None)
    if seed is not None:
        out["seed"] = seed
    return out


def summarize(variant: str, card: dict) -> dict:
    """One table row from a trained variant's card.json (`variant` may name its seed)."""
    validation = card["metrics"]["validation"]
    speed = card["metrics"]["speed_onnxruntime_cpu"]
    model = card["training"]["model"]
    row = {
        "variant": variant,
        "input": card["input"]["size"],
        "widths": model["widths"],
        "depths": model["depths"],
        "macs_M": round(model["macs"] / 1e6),
        "params_M": round(model["params"] / 1e6, 2),
        "ms_per_face_b1": speed["batch1"]["ms_per_face"],
        "ms_per_face_b16": speed["batch16"]["ms_per_face"],
        "self_blend_auc": validation["sbi_of_val_reals"]["auc"],
        "videos_auc": validation["overall"]["videos"]["video"]["auc"],
        "epochs": len(card["training"]["epochs"]),
        "train_min": round(card["training"]["wall_time_s"]["train"] / 60, 1),
    }
    for family in FAMILIES:
        block = validation["family"].get(family)
        row[family] = block["video"]["auc"] if block else None
    return row


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    def f(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    head = ("| variant | input px | widths / depths | M mult-adds | M params | ms/face batch 1 / 16 "
            "| self-blend AUC | fake videos | " + " | ".join(FAMILIES) + " | epochs | train min |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['input']} | {r['widths']} / {r['depths']} | {r['macs_M']} "
            f"| {r['params_M']} | {r['ms_per_face_b1']:.2f} / {r['ms_per_face_b16']:.2f} "
            f"| {f(r['self_blend_auc'])} | {f(r['videos_auc'])} | "
            + " | ".join(f(r[k]) for k in FAMILIES) + f" | {r['epochs']} | {r['train_min']} |")
    return "\n".join(lines)


def collect(work: Path) -> list[dict]:
    """Rows of every variant trained under `work` (any number of runs and seeds), in
    `engines.export.SWEEP` order, then by seed."""
    from engines.export import SWEEP

    order = {name: i for i, name in enumerate(SWEEP)}
    found = []
    for folder in sorted(Path(work).iterdir()) if Path(work).is_dir() else []:
        card = folder / "pack" / "card.json"
        variant, _, seed = folder.name.partition("-seed")
        if variant in order and card.is_file():
            label = variant if not seed else f"{variant} seed {seed}"
            found.append(((order[variant], int(seed or 0)), summarize(label, json.loads(card.read_text()))))
    return [row for _, row in sorted(found, key=lambda item: item[0])]


def card_body(rows: list[dict], command: str) -> str:
    return "\n".join([
        "```", command, "```", "",
        "Every variant trained with this card's recipe, data and split (training seed 0 unless "
        "the row names another) on a short schedule (one stage of the epochs shown), exported "
        "and validated as the shipped model "
        "(ONNX Runtime CPU on the build machine, 2 cores; AUCs on this card's validation "
        "split: self-blends of validation reals, then fake videos per family against the real "
        "videos, GAN stills against real stills; every fake method unseen). The short schedule "
        "ranks the variants; the last row is this card's model, trained with the full recipe.",
        "", table(rows),
    ])


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    from engines.export import SWEEP

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/train/spatial-sbi.yaml"))
    parser.add_argument("--data", type=Path, default=os.environ.get("VERITY_DATA_DIR"),
                        help="face media folder with manifest.csv (default $VERITY_DATA_DIR)")
    parser.add_argument("--work", type=Path, default=Path("runs/arch-trade"))
    parser.add_argument("--cache", type=Path, help="face-crop cache (as verity train spatial)")
    parser.add_argument("--variants", default=",".join(SWEEP),
                        help=f"comma-separated, from: {', '.join(SWEEP)}")
    parser.add_argument("--epochs", type=_positive_int, default=10)
    parser.add_argument("--seed", type=int,
                        help="training seed instead of the config's (run-to-run spread)")
    parser.add_argument("--write-card", type=Path, metavar="PACK",
                        help="put the table of every variant trained under --work (this run's "
                             "and earlier ones, any seed) into this pack's MODEL_CARD.md")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: print (and --write-card) what --work holds")
    args = parser.parse_args(argv)
    variants = [] if args.collect else [v.strip() for v in args.variants.split(",") if v.strip()]
    # Every mistake is named before the first variant's minutes of training, not after.
    unknown = [v for v in variants if v not in SWEEP]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(SWEEP)}")
    if variants and not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    if variants and not args.config.is_file():
        parser.error(f"--config {args.config}: no such file")
    if args.write_card and not (args.write_card / "card.json").is_file():
        parser.error(f"--write-card {args.write_card}: not a model pack (no card.json)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from engines.cards import write_section
    from engines.train.spatial import load_config, run

    rows = []
    cfg = load_config(args.config) if variants else {}
    for variant in variants:
        label = variant if args.seed is None else f"{variant} seed {args.seed}"
        work = args.work / (variant if args.seed is None else f"{variant}-seed{args.seed}")
        work.mkdir(parents=True, exist_ok=True)
        config_path = work / "config.yaml"
        config_path.write_text(yaml.safe_dump(
            variant_config(cfg, variant, args.epochs, args.seed), sort_keys=False))
        started = time.time()
        pack = run(config_path, args.data, work, cache_dir=args.cache)
        log.info("%s done in %.0f s", variant, time.time() - started)
        rows.append(summarize(label, json.loads((pack / "card.json").read_text())))
        print(table(rows), flush=True)  # after each variant: a long sweep keeps what it has
    if args.collect or args.write_card:
        rows = collect(args.work)
        if not rows:
            parser.error(f"no trained variant under {args.work}")
        print(table(rows))
    if args.write_card:
        plain = sorted({r["variant"].split()[0] for r in rows}, key=list(SWEEP).index)
        epochs = ",".join(str(e) for e in sorted({r["epochs"] for r in rows}))  # as trained
        command = (f"python -m engines.train.arch_trade --config {args.config.name} --data DATA "
                   f"--variants {','.join(plain)} --epochs {epochs}")
        if any(" seed " in r["variant"] for r in rows):
            command += "\n# rows 'X seed N': the same with --variants X --seed N"
        # The pack's own model, trained with the full recipe, as the reference row.
        card = json.loads((args.write_card / "card.json").read_text())
        rows.append(summarize(f"{card['name']} {card['version']} (this card)", card))
        write_section(args.write_card / "MODEL_CARD.md", TITLE, card_body(rows, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
