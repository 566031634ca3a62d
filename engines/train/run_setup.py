"""What every trainer does before it trains: read its config, seed, key caches, split the data.

The spatial and temporal trainers share these so that their checkpoints are keyed alike and
their validation groups come from one rule (engines.manifest.split_by_group).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import yaml

from engines.manifest import ManifestEntry, Split, split_by_group

log = logging.getLogger("verity.train")


def load_config(path: Path, sections: tuple[str, ...], schema=None) -> dict:
    """The YAML training config (its `base` merged in), checked against `schema` (an
    engines.train.recipes schema: ValueError naming every bad key), with each named section
    present (empty when absent)."""
    cfg = read_config(Path(path))
    if schema is not None:
        from engines.train.recipes import check_recipe

        check_recipe(cfg, schema)
    for key in sections:
        cfg.setdefault(key, {})
    return cfg


def read_config(path: Path) -> dict:
    """A training config as a dict. `base: FILE` (relative to this file) takes every key from
    FILE, then this file's keys over them, mappings merged key by key: an experiment holds
    only what it changes. Lists are replaced whole."""
    return _read_with_base(Path(path), ())


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in seen:
        raise ValueError(f"{path}: `base` loops back to {resolved.name}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    base = raw.pop("base", None)
    if base is None:
        return raw
    return merged(_read_with_base(path.parent / str(base), (*seen, resolved)), raw)


def merged(base: dict, override: dict) -> dict:
    """`override` over `base`, mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (merged(out[key], value) if isinstance(value, dict)
                    and isinstance(out.get(key), dict) else value)
    return out


def seed_everything(seed: int, threads: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.backends.mkldnn.deterministic = True  # cheap on CPU; keeps reruns identical


def digest(obj) -> str:
    """A short stable key of a JSON-able object (checkpoint and cache names)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def train_fakes(split_cfg: dict) -> dict[str, float]:
    """`split.train_fakes`: method family -> share of its fake-only groups trained on."""
    raw = split_cfg.get("train_fakes") or {}
    try:
        return {str(k): float(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError):
        raise ValueError(
            f"split.train_fakes must map method families to fractions (e.g. gan_face: 0.5), "
            f"got {raw!r}"
        ) from None


def split_and_record(entries: list[ManifestEntry], split_cfg: dict, work_dir: Path) -> Split:
    """The config's split by group, logged and written to work_dir/split.json."""
    split = split_by_group(entries, val_fraction=float(split_cfg.get("val_fraction", 0.25)),
                           seed=int(split_cfg.get("seed", 0)), train_fakes=train_fakes(split_cfg))
    assert not (split.train_groups & split.val_groups)
    trained = {e.family for e in split.train if e.is_fake}
    missing = sorted(f for f, share in train_fakes(split_cfg).items() if share > 0 and f not in trained)
    if missing:
        families = sorted({e.family for e in entries if e.is_fake})
        raise ValueError(
            f"split.train_fakes: no fake-only groups of {missing} in the manifest "
            f"(its fake families: {families})"
        )
    summary = split.summary()
    log.info("split: %s", json.dumps(summary))
    (work_dir / "split.json").write_text(json.dumps({
        "summary": summary,
        "train_groups": sorted(split.train_groups), "val_groups": sorted(split.val_groups),
    }, indent=2) + "\n")
    return split


def split_rule_text(split_cfg: dict) -> str:
    """The split rule in words, for model cards."""
    return (f"by group, seed {split_cfg.get('seed', 0)}: all groups with any fake "
            f"+ {split_cfg.get('val_fraction', 0.25):.0%} of real-only groups -> val"
            + "".join(f"; {v:.0%} of the {k}-only groups -> train"
                      for k, v in sorted(train_fakes(split_cfg).items())))


def adamw(net, tcfg: dict):
    """AdamW at train.lr, weight decay (train.weight_decay) on weights only, not on biases
    and norm scales."""
    import torch

    decay, no_decay = [], []
    for _, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": float(tcfg.get("weight_decay", 5e-4))},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=float(tcfg.get("lr", 3e-3)),
    )


def warmup_cosine(base_lr: float, warmup_steps: int, total_steps: int):
    """step -> learning rate: linear warm-up, then cosine decay to 0 at total_steps."""

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return base_lr * (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return base_lr * 0.5 * (1 + np.cos(np.pi * t))

    return lr_at
