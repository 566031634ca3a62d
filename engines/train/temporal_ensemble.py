"""Temporal ensembles: networks of one recipe trained with different seeds, logits averaged.

With tens of real training videos, two runs of one recipe differ by several AUC points on
unseen fakes; averaging their logits keeps what they share. A config asks for one with
`ensemble_seeds: [0, 1, ...]`: `verity train temporal` then trains one network per seed
(each with its own checkpoint) and exports their mean in one graph. Packs already trained
with those seeds are joined without training again:

    python -m engines.train.temporal_ensemble --config configs/train/CONFIG.yaml \
        --members temporal-sbi runs/temporal-sbi-seed1/pack --out runs/temporal-ensemble/network
    verity train temporal --config configs/train/CONFIG.yaml --data DIR \
        --refit-fusion runs/temporal-ensemble/network --spatial-pack spatial-sbi

The joined graph takes each member's whole graph (preprocessing and mirror average
included) on the same input and outputs the mean of their logits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

INPUT_NAME = "crops"
OUTPUT_NAME = "logits"


def config_seeds(cfg: dict) -> list[int]:
    """The seeds a temporal config trains: `ensemble_seeds`, else its one `seed`."""
    seeds = cfg.get("ensemble_seeds")
    if seeds is None:
        return [int(cfg.get("seed", 0))]
    if (not isinstance(seeds, list) or len(seeds) < 2 or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ValueError(f"ensemble_seeds: {seeds!r} is not a list of two or more distinct "
                         "integer seeds")
    return list(seeds)


def recorded_seeds(training: dict) -> list[int]:
    """The seeds a pack's network was trained with (its card's training record)."""
    ensemble = training.get("ensemble")
    return list(ensemble["seeds"]) if ensemble else [int(training.get("seed", 0))]


def join_onnx(paths: list[Path], out: Path) -> Path:
    """One graph averaging the logits of the member graphs on a shared input."""
    import onnx
    from onnx import compose, helper

    members = [onnx.load(str(p)) for p in paths]
    first = members[0]
    for path, m in zip(paths, members):
        names = ([i.name for i in m.graph.input], [o.name for o in m.graph.output])
        if names != ([INPUT_NAME], [OUTPUT_NAME]):
            raise ValueError(f"{path}: inputs/outputs {names}, expected "
                             f"[{INPUT_NAME}] -> [{OUTPUT_NAME}]")
        if m.graph.input[0].type != first.graph.input[0].type:
            raise ValueError(f"{path}: its input shape or type differs from {paths[0]}'s")
    nodes, initializers, value_info, outputs = [], [], [], []
    for i, m in enumerate(members):
        prefixed = compose.add_prefix(m, f"m{i}_")
        nodes.append(helper.make_node("Identity", [INPUT_NAME], [f"m{i}_{INPUT_NAME}"]))
        nodes.extend(prefixed.graph.node)
        initializers.extend(prefixed.graph.initializer)
        value_info.extend(prefixed.graph.value_info)
        outputs.append(f"m{i}_{OUTPUT_NAME}")
    nodes.append(helper.make_node("Mean", outputs, [OUTPUT_NAME]))
    graph = helper.make_graph(nodes, "temporal_ensemble", list(first.graph.input),
                              list(first.graph.output), initializer=initializers,
                              value_info=value_info)
    model = helper.make_model(graph, opset_imports=list(first.opset_import),
                              producer_name="verity temporal_ensemble")
    model.ir_version = first.ir_version
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def join_packs(config_path: Path, members: list[str | Path], out_dir: Path) -> Path:
    """A pack folder holding the members' joined network, for `--refit-fusion`: checked to
    be the config's recipe with the config's `ensemble_seeds`, one member per seed."""
    from engines.data.clips import spec_from_config
    from engines.registry import ModelCard, file_sha256, resolve_pack, write_card
    from engines.train.temporal import load_config, reuse_mismatches, target_spec
    from engines.train.temporal_data import WindowFakeConfig

    cfg = load_config(Path(config_path))
    seeds = config_seeds(cfg)
    packs = [resolve_pack(m) for m in members]
    target, frames = target_spec(cfg)
    fakes = WindowFakeConfig.from_dict(cfg["fakes"])
    member_seeds = []
    for pack in packs:
        if pack.card.role != "temporal" or pack.card.training.get("ensemble"):
            raise ValueError(f"{pack.id}: not a single temporal network")
        seed = int(pack.card.training.get("seed", 0))
        differs = reuse_mismatches(pack.card.training, {**cfg, "seed": seed}, fakes,
                                   spec_from_config(cfg).digest(), frames, target,
                                   seeds=[seed])
        if differs:
            raise ValueError(f"{pack.id} was not trained with {Path(config_path).name}'s "
                             f"recipe ({', '.join(differs)} differ)")
        member_seeds.append(seed)
    if sorted(member_seeds) != sorted(seeds):
        raise ValueError(f"members trained with seeds {member_seeds}; {Path(config_path).name} "
                         f"asks for ensemble_seeds {seeds}")
    order = [member_seeds.index(s) for s in seeds]  # the config's seed order
    packs = [packs[i] for i in order]

    out_dir = Path(out_dir)
    onnx_path = join_onnx([p.onnx_path for p in packs], out_dir / "model.onnx")
    base = packs[0].card
    training = dict(base.training)
    training["ensemble"] = {
        "seeds": seeds,
        "members": [{"pack": p.id, "seed": s, "onnx_sha256": p.card.onnx_sha256}
                    for p, s in zip(packs, seeds)],
        "epochs": {p.id: p.card.training.get("epochs") for p in packs},
    }
    training["model"] = {**base.training["model"],
                         "macs": sum(p.card.training["model"]["macs"] for p in packs),
                         "params": sum(p.card.training["model"]["params"] for p in packs)}
    training["wall_time_s"] = {**base.training["wall_time_s"],
                               "train": sum(p.card.training["wall_time_s"]["train"]
                                            for p in packs)}
    training["export_max_abs_diff"] = max(p.card.training["export_max_abs_diff"] for p in packs)
    card = ModelCard(
        name=f"{cfg.get('name', 'temporal')}-network", version=str(cfg.get("version", "0")),
        role="temporal", onnx="model.onnx", onnx_sha256=file_sha256(onnx_path),
        input=base.input, calibration=base.calibration, threshold=base.threshold,
        threshold_note="not calibrated: a network for --refit-fusion", training=training,
        metrics={},
    )
    write_card(out_dir, card)
    return out_dir


def mean_logits_check(members: list[Path], joined: Path, windows: np.ndarray) -> float:
    """max |joined - mean of the members| on `windows` (uint8 N x T x H x W x 3)."""
    from engines.train.temporal_export import onnx_window_logits

    each = np.stack([onnx_window_logits(str(p), windows) for p in members])
    return float(np.abs(onnx_window_logits(str(joined), windows) - each.mean(0)).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engines.train.temporal_ensemble",
        description="Join temporal packs trained with a config's ensemble_seeds into one "
                    "network (logits averaged) for verity train temporal --refit-fusion.")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--members", nargs="+", required=True, help="temporal packs, one per seed")
    parser.add_argument("--out", type=Path, required=True, help="pack folder to write")
    args = parser.parse_args(argv)
    from engines.registry import PackError

    try:
        out = join_packs(args.config, args.members, args.out)
    except (ValueError, PackError, OSError) as exc:
        print(f"temporal_ensemble: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
