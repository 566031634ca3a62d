"""Training on synthetic faces (no data folder): the loop runs, is seeded, and exports."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.faces.align import AlignSpec  # noqa: E402
from engines.synthesis.sbi import SBIConfig, face_ellipse_landmarks  # noqa: E402
from engines.train.augment import AugmentConfig, center_crop, jitter_matrix  # noqa: E402
from engines.train.dataset import FaceBank, PairMaker  # noqa: E402
from engines.train.spatial import train_stages  # noqa: E402

TARGET = AlignSpec(32, 3.0, 0.55)
LOOSE = TARGET.widened(1.5, 64)


def _bank(n: int = 6) -> FaceBank:
    rng = np.random.default_rng(0)
    crops = rng.integers(30, 220, (n, LOOSE.size, LOOSE.size, 3), dtype=np.uint8)
    kps = LOOSE.destination_points()
    mesh = np.stack([face_ellipse_landmarks(kps, 468)] * n)
    return FaceBank(crops, mesh, np.arange(n) // 2, np.zeros(n, np.int32),
                    ["a", "b", "c"], ["real"] * 3, [""] * 3, ["g1", "g2", "g3"], ["video"] * 3)


CFG = {
    "seed": 3,
    "model": {"widths": [8, 16], "depths": [1, 1], "dropout": 0.0},
    "sbi": {},
    "augment": {},
    "train": {"epochs": 2, "batch_pairs": 2, "steps_per_epoch": 2, "workers": 0, "aux_weight": 1.0,
              "threads": 1, "lr": 0.01, "warmup_epochs": 0.5},
}


def test_pair_maker_gives_a_pair():
    bank = _bank()
    maker = PairMaker(LOOSE, TARGET, SBIConfig(), AugmentConfig())
    real, fake, mask = maker(bank.crops[0], bank.mesh[0], np.random.default_rng(1))
    assert mask.shape == (32, 32) and mask.max() > 0
    assert real.shape == fake.shape == (32, 32, 3) and real.dtype == np.uint8
    assert not np.array_equal(real, fake)


def test_center_crop_matches_the_runtime_crop_geometry():
    # The centre crop of a loose crop is the run-time crop: the keypoints land where
    # AlignSpec says.
    loose_img = np.zeros((LOOSE.size, LOOSE.size, 3), np.uint8)
    for x, y in LOOSE.destination_points():
        loose_img[int(round(y)), int(round(x))] = 255
    crop = center_crop(loose_img[None], LOOSE, TARGET)[0]
    for x, y in TARGET.destination_points():
        assert crop[max(0, int(y) - 1): int(y) + 2, max(0, int(x) - 1): int(x) + 2].max() > 0
    m = jitter_matrix(LOOSE, TARGET, np.random.default_rng(0), AugmentConfig())
    assert m.shape == (2, 3)


def test_training_runs_and_is_reproducible(tmp_path):
    bank = _bank()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, hist_a, _ = train_stages(CFG, bank, TARGET, LOOSE, tmp_path / "a")
    b, hist_b, _ = train_stages(CFG, bank, TARGET, LOOSE, tmp_path / "b")
    assert len(hist_a) == 2 and np.isfinite(hist_a[-1]["loss"])
    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert (tmp_path / "a" / "train_log.jsonl").read_text().count("\n") == 2


def test_stages_continue_and_reuse_checkpoints(tmp_path):
    bank = _bank()
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 1,
                            "stages": [{}, {"lr": 0.001, "augment": {"color_p": 1.0, "hue_shift": 8}}]}}
    net, hist, _ = train_stages(cfg, bank, TARGET, LOOSE, tmp_path)
    assert [h["stage"] for h in hist] == [1, 2]
    assert len(list(tmp_path.glob("stage*.pt"))) == 2
    again, hist2, _ = train_stages(cfg, bank, TARGET, LOOSE, tmp_path)  # both reused
    assert [h["loss"] for h in hist2] == [h["loss"] for h in hist]
    for va, vb in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(va, vb)
