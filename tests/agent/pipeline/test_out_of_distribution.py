"""Faces unlike the spatial model's training faces are reported unknown, never real."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from agent.config import load_config
from agent.pipeline.scorer import FaceScorer
from agent.scoring.report import score_video
from engines.faces import align_faces
from engines.ood import REASON, OODStats
from engines.registry import resolve_pack


@pytest.fixture(scope="module")
def shipped():
    pack = resolve_pack("spatial-sbi")
    if pack.card.ood is None:
        pytest.skip(f"{pack.id} ships no out-of-distribution check")
    return pack


def test_a_real_face_is_in_distribution_and_noise_is_not(shipped, astronaut, detector):
    scorer = FaceScorer(load_config().models)
    face = align_faces(astronaut, detector.detect(astronaut).keypoints[:1], scorer.align_spec)
    noise = np.random.default_rng(0).integers(0, 256, (4, *face.shape[1:]), dtype=np.uint8)
    _, flags = scorer.spatial_judgements(np.concatenate([face, noise]))
    assert flags.tolist() == [False, True, True, True, True]


def test_a_still_judged_by_the_fused_rule_gets_the_spatial_check(shipped, astronaut, detector):
    scorer = FaceScorer(load_config().models)
    assert scorer.deep is not None and scorer.config.deep_rule == "fused"  # the default
    face = align_faces(astronaut, detector.detect(astronaut).keypoints[:1], scorer.still_align_spec)
    noise = np.random.default_rng(1).integers(0, 256, (2, *face.shape[1:]), dtype=np.uint8)
    _, flags = scorer.still_judgements(np.concatenate([face, noise]))
    assert flags.tolist() == [False, True, True]


def pack_with_threshold(shipped, folder, threshold: float) -> str:
    shutil.copytree(shipped.folder, folder)
    stats = OODStats.load(shipped.ood_path)
    OODStats(stats.mean, stats.precision, threshold).save(folder / shipped.card.ood.file)
    return str(folder)


def test_faces_beyond_the_threshold_are_unknown_with_the_reason(shipped, tmp_path, real_clip):
    # A threshold of 0 puts every face outside: the track must end unknown, not real.
    pack = pack_with_threshold(shipped, tmp_path / "strict", 0.0)
    report = score_video(real_clip.path, load_config(models={"spatial": pack}))
    (track,) = report.tracks
    assert track.verdict == "unknown" and report.verdict == "unknown"
    assert track.frames_judged == 0 and track.frames_unknown > 0
    assert track.unknown_reasons[REASON] == track.frames_unknown


def test_the_check_can_be_switched_off(shipped, tmp_path, real_clip):
    pack = pack_with_threshold(shipped, tmp_path / "strict", 0.0)
    report = score_video(real_clip.path, load_config(models={"spatial": pack, "ood_check": False}))
    (track,) = report.tracks
    assert track.frames_judged > 0 and REASON not in track.unknown_reasons


def test_a_corrupt_ood_file_is_named_in_the_error(shipped, tmp_path):
    from engines.registry import PackError

    folder = tmp_path / "corrupt"
    shutil.copytree(shipped.folder, folder)
    (folder / shipped.card.ood.file).write_bytes(b"not an npz")
    with pytest.raises(PackError, match="ood.npz is unreadable"):
        FaceScorer(load_config(models={"spatial": str(folder)}).models)
