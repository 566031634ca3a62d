"""Evaluation manifests: a CSV of media files with their labels, and which of them to run.

Columns: `path` and `label` (real | fake) are required; `method`, `group` and `kind`
(video | image) are optional, and any other column is ignored. `pack` (optional, read by
`verity calibrate`) names the deep model pack, a folder, that scores that row instead of
`models.deep`: `verity train deep --fold-packs` writes it so that every clip is scored by a
head that never saw its group. Paths are relative to the CSV's folder. The project's manifest.csv is a valid evaluation manifest.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from agent.scoring.report import is_image
from engines.manifest import ManifestEntry, method_family, normalize_group, split_by_group

Kind = Literal["video", "image"]
LABELS = ("real", "fake")
DEFAULT_SPLIT_CONFIG = Path("configs/train/spatial-sbi.yaml")


class ManifestError(ValueError):
    """A manifest or split that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class EvalItem:
    """One media file to judge."""

    path: Path
    """Absolute path."""
    rel: str
    """As written in the manifest (the file's id in reports)."""
    label: str
    method: str
    group: str
    kind: Kind
    line: int
    """Line in the CSV (header = 1), for messages."""
    pack: Path | None = None
    """The deep pack folder that scores this row (None: the configured one)."""

    @property
    def is_fake(self) -> bool:
        return self.label == "fake"

    @property
    def family(self) -> str:
        """Method prefix before ':' ("gan_face", "lip_sync"...); "real" for real files."""
        return method_family(self.method) if self.is_fake else "real"

    @property
    def method_name(self) -> str:
        """The method, or "unspecified" for a fake without one (real files: "")."""
        return (self.method or "unspecified") if self.is_fake else ""


def read_eval_manifest(csv_path: str | Path) -> list[EvalItem]:
    """Read and check an evaluation CSV. Files are not opened here: a missing file is the
    runner's to report, so one bad row does not hide the results of every other."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"manifest {csv_path}: no such file")
    root = csv_path.resolve().parent
    items: list[EvalItem] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            raise ManifestError(
                f"manifest {csv_path}: no {' or '.join(repr(c) for c in missing)} column "
                f"(found: {', '.join(columns) or 'no header'}); needed: path,label "
                "[,method,group,kind]"
            )
        reader.fieldnames = columns
        for line, row in enumerate(reader, start=2):
            rel = (row.get("path") or "").strip()
            label = (row.get("label") or "").strip().lower()
            if not rel:
                raise ManifestError(f"manifest {csv_path} line {line}: empty path")
            if label not in LABELS:
                raise ManifestError(
                    f"manifest {csv_path} line {line}: label {row.get('label')!r} for {rel} "
                    "is not 'real' or 'fake'"
                )
            kind_cell = (row.get("kind") or "").strip().lower()
            if kind_cell and kind_cell not in ("video", "image"):
                raise ManifestError(
                    f"manifest {csv_path} line {line}: kind {kind_cell!r} for {rel} is not "
                    "'video' or 'image'"
                )
            path = (root / rel).resolve()
            pack_cell = (row.get("pack") or "").strip()
            kind = kind_cell or ("image" if is_image(path) else "video")
            items.append(
                EvalItem(
                    path=path,
                    rel=rel,
                    label=label,
                    method=(row.get("method") or "").strip() if label == "fake" else "",
                    group=normalize_group(row.get("group") or ""),
                    kind=kind,  # type: ignore[arg-type]
                    line=line,
                    pack=(root / pack_cell).resolve() if pack_cell else None,
                )
            )
    if not items:
        raise ManifestError(f"manifest {csv_path}: no rows")
    return items


@dataclass(frozen=True)
class SplitRule:
    config: str
    val_fraction: float
    seed: int
    from_defaults: bool
    """True when the config had no `split:` section (training's defaults apply)."""
    train_fakes: dict[str, float] = field(default_factory=dict)
    """Method family -> share of its fake-only groups trained on (split.train_fakes)."""


def load_split_rule(config_path: str | Path | None) -> SplitRule:
    """The `split:` section of a training config (engines/train), as the trainer reads it.

    config_path None: configs/train/spatial-sbi.yaml from the working directory or the
    repository. A config without `split:` gives the trainer's defaults (0.25, seed 0).
    """
    if config_path is None:
        repo = Path(__file__).resolve().parents[2]
        candidates = [DEFAULT_SPLIT_CONFIG, repo / DEFAULT_SPLIT_CONFIG]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ManifestError(
                f"--split needs the training config that defines the split; "
                f"{DEFAULT_SPLIT_CONFIG} was not found: pass --split-config FILE"
            )
        config_path = found
    path = Path(config_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ManifestError(f"split config {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"split config {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"split config {path}: expected a mapping at the top level")
    section = data.get("split")
    if section is not None and not isinstance(section, dict):
        raise ManifestError(f"split config {path}: `split` must be a mapping")
    section = section or {}
    try:
        fraction = float(section.get("val_fraction", 0.25))
        seed = int(section.get("seed", 0))
    except (TypeError, ValueError):
        raise ManifestError(
            f"split config {path}: split.val_fraction / split.seed must be numbers"
        ) from None
    if not 0.0 <= fraction <= 1.0:
        raise ManifestError(f"split config {path}: split.val_fraction {fraction} not in 0..1")
    train_fakes = section.get("train_fakes") or {}
    try:
        train_fakes = {str(k): float(v) for k, v in dict(train_fakes).items()}
    except (TypeError, ValueError):
        raise ManifestError(
            f"split config {path}: split.train_fakes must map method families to fractions"
        ) from None
    bad = {k: v for k, v in train_fakes.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise ManifestError(f"split config {path}: split.train_fakes fractions not in 0..1: {bad}")
    return SplitRule(str(path), fraction, seed, from_defaults="split" not in data,
                     train_fakes=train_fakes)


def select_split(
    items: list[EvalItem], side: Literal["validation", "train"], rule: SplitRule
) -> list[EvalItem]:
    """The items on one side of the training split (engines.manifest.split_by_group).

    The split depends on every group in the manifest, so apply it to the same manifest the
    model was trained from, before any other filter.
    """
    if any(not item.group for item in items):
        blank = next(item for item in items if not item.group)
        raise ManifestError(
            f"--split needs a `group` for every row (line {blank.line}, {blank.rel}, has none)"
        )
    entries = [
        ManifestEntry(item.path, item.rel, item.label, item.kind, item.method, item.group)
        for item in items
    ]
    split = split_by_group(entries, val_fraction=rule.val_fraction, seed=rule.seed,
                           train_fakes=rule.train_fakes)
    keep = {e.rel for e in (split.val if side == "validation" else split.train)}
    return [item for item in items if item.rel in keep]


def limit_items(items: list[EvalItem], n: int, seed: int = 0) -> list[EvalItem]:
    """At most n items drawn with the seed, reals and fakes alternately (so a small limit
    still holds both classes), returned in manifest order."""
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)
    pools = {label: [i for i, item in enumerate(items) if item.label == label] for label in LABELS}
    for pool in pools.values():
        rng.shuffle(pool)
    chosen: list[int] = []
    while len(chosen) < n:
        for label in LABELS:
            if pools[label] and len(chosen) < n:
                chosen.append(pools[label].pop())
    return [items[i] for i in sorted(chosen)]
