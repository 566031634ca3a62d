"""The face-media manifest (manifest.csv) and the train/validation split by group.

Columns: path (relative to the manifest's folder), label (real | fake), kind (video | image),
method, group, source, notes. Groups are identities or source clips; a split never puts one
group on both sides. Some group cells carry a note in parentheses
("vrt_face:1 (real source = ...)", "vexpress:10(VASA-1 face)"): the note is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

WATERMARK_NOTE = "watermark"
_GROUP_NOTE = re.compile(r"\s*\(.*\)\s*$")


@dataclass(frozen=True)
class ManifestEntry:
    path: Path  # absolute
    rel: str  # as written in the manifest
    label: str  # real | fake
    kind: str  # video | image
    method: str  # "" for real media
    group: str  # normalised
    source: str = ""
    notes: str = ""

    @property
    def is_fake(self) -> bool:
        return self.label == "fake"

    @property
    def watermarked(self) -> bool:
        return WATERMARK_NOTE in self.notes.lower()

    @property
    def family(self) -> str:
        return method_family(self.method)

    @property
    def key(self) -> str:
        """A stable file-system-safe id for caches."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.rel)[-80:]
        digest = hashlib.sha1(self.rel.encode()).hexdigest()[:10]
        return f"{stem}-{digest}"


def normalize_group(group: str) -> str:
    """Drop a trailing parenthesised note from a group cell."""
    return _GROUP_NOTE.sub("", group.strip()) or group.strip()


def method_family(method: str) -> str:
    """The method prefix before ':' ("lip_sync", "gan_face", ...); "real" for real media."""
    return method.split(":", 1)[0].strip() if method else "real"


def resolve_manifest(data_dir: str | os.PathLike | None) -> Path:
    """manifest.csv inside data_dir (or $VERITY_DATA_DIR); data_dir may name the csv itself."""
    if data_dir is None:
        data_dir = os.environ.get("VERITY_DATA_DIR")
    if not data_dir:
        raise FileNotFoundError("no data folder: pass --data or set VERITY_DATA_DIR")
    path = Path(data_dir).expanduser()
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    return path


def read_manifest(data_dir: str | os.PathLike | None = None) -> list[ManifestEntry]:
    """Read manifest.csv; paths are resolved relative to the manifest's folder."""
    manifest = resolve_manifest(data_dir)
    root = manifest.parent
    entries = []
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            label = row["label"].strip().lower()
            if label not in ("real", "fake"):
                raise ValueError(f"{manifest}: bad label {row['label']!r} for {row['path']}")
            entries.append(
                ManifestEntry(
                    path=(root / row["path"]).resolve(),
                    rel=row["path"],
                    label=label,
                    kind=row["kind"].strip().lower(),
                    method=row.get("method", "").strip(),
                    group=normalize_group(row["group"]),
                    source=row.get("source", "").strip(),
                    notes=row.get("notes", "").strip(),
                )
            )
    return entries


@dataclass
class Split:
    train: list[ManifestEntry] = field(default_factory=list)
    val: list[ManifestEntry] = field(default_factory=list)

    @property
    def train_groups(self) -> set[str]:
        return {e.group for e in self.train}

    @property
    def val_groups(self) -> set[str]:
        return {e.group for e in self.val}

    def summary(self) -> dict:
        def count(entries: list[ManifestEntry]) -> dict:
            out: dict[str, int] = {"files": len(entries), "groups": len({e.group for e in entries})}
            for e in entries:
                k = f"{e.label}_{e.kind}"
                out[k] = out.get(k, 0) + 1
            return out

        return {"train": count(self.train), "val": count(self.val)}


def split_by_group(
    entries: list[ManifestEntry],
    *,
    val_fraction: float = 0.25,
    seed: int = 0,
    train_fakes: dict[str, float] | None = None,
) -> Split:
    """Deterministic split by group.

    Every group holding any fake goes to validation (so its reals are never trained on), plus
    a seeded `val_fraction` of the real-only groups. Training therefore holds reals only,
    except where `train_fakes` maps a method family to a fraction: that seeded fraction of the
    groups holding only that family's fakes (no reals: fully generated faces) is trained on.
    Those figures are then in-method (other images of a seen generator), not unseen-method.
    """
    groups: dict[str, list[ManifestEntry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    with_fake = sorted(g for g, es in groups.items() if any(e.is_fake for e in es))
    real_only = sorted(g for g, es in groups.items() if not any(e.is_fake for e in es))
    rng = random.Random(seed)
    shuffled = real_only[:]
    rng.shuffle(shuffled)
    n_val = round(val_fraction * len(real_only))
    val_groups = set(with_fake) | set(shuffled[:n_val])
    for family, fraction in sorted((train_fakes or {}).items()):
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"train_fakes[{family!r}] = {fraction}: not a fraction in 0..1")
        only_family = sorted(
            g for g in with_fake
            if all(e.is_fake and e.family == family for e in groups[g])
        )
        # Own generator per family, so adding a family leaves the others' choice unchanged.
        family_rng = random.Random(f"{seed}:{family}")
        family_rng.shuffle(only_family)
        val_groups -= set(only_family[: round(float(fraction) * len(only_family))])
    split = Split()
    for e in entries:
        (split.val if e.group in val_groups else split.train).append(e)
    return split
