"""Fixtures: a plumbing model pack and a small labelled manifest of synthetic face media."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.demo.clip import build_clip
from tests.agent.evaluation.plumbing import write_plumbing_pack

MANIFEST = """\
path,label,method,group,notes
real.mp4,real,,id_a,ignored column
face.jpg,REAL,,id_b,
blank.png,real,,id_c,no face at all
manipulated.mp4,fake,face_swap:demo_sbi,id_a,
manipulated.mp4,fake,face_swap:demo_sbi_again,id_a,the same clip under a second method
fake_face.jpg,fake,gan_face:test,id_d,
"""


@dataclass(frozen=True)
class MediaSet:
    folder: Path
    manifest: Path


@pytest.fixture(scope="session")
def plumbing_pack(tmp_path_factory) -> Path:
    return write_plumbing_pack(tmp_path_factory.mktemp("packs") / "plumbing")


CLIP_SECONDS = 3.0


@pytest.fixture(scope="session")
def media_set(tmp_path_factory, astronaut) -> MediaSet:
    """Two 3 s clips of the demo's kind (real; 1.5 s real then self-blended), a face photo,
    a blank picture, and a 'fake' still (the photo re-encoded coarsely), with the manifest
    above. Shorter than the shared 8 s fixtures, to keep every test here fast."""
    folder = tmp_path_factory.mktemp("evalset")
    build_clip(folder / "real.mp4", real_seconds=CLIP_SECONDS, fake_seconds=0)
    half = CLIP_SECONDS / 2
    build_clip(folder / "manipulated.mp4", real_seconds=half, fake_seconds=half)
    cv2.imwrite(str(folder / "face.jpg"), astronaut)
    cv2.imwrite(str(folder / "fake_face.jpg"), astronaut, [cv2.IMWRITE_JPEG_QUALITY, 20])
    cv2.imwrite(str(folder / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    manifest = folder / "manifest.csv"
    manifest.write_text(MANIFEST)
    return MediaSet(folder, manifest)


@pytest.fixture
def pack_env(monkeypatch, plumbing_pack) -> Path:
    """`verity eval` (via agent.cli.main) uses the plumbing pack."""
    monkeypatch.setenv("VERITY_MODELS__SPATIAL", str(plumbing_pack))
    monkeypatch.setenv("VERITY_MODELS__TEMPORAL", "none")  # fitted with another spatial pack
    monkeypatch.setenv("VERITY_MODELS__DEEP", "none")  # the plumbing pack alone decides
    return plumbing_pack
