"""Training on synthetic faces (no data folder): the loop runs, is seeded, and exports."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.faces.align import AlignSpec  # noqa: E402
from engines.synthesis.sbi import SBIConfig, face_ellipse_landmarks  # noqa: E402
from engines.train.augment import AugmentConfig, center_crop, jitter_matrix  # noqa: E402
from engines.train.dataset import (  # noqa: E402
    FaceBank,
    FakePairMaker,
    PairDataset,
    PairMaker,
    collate_pairs,
    match_colour,
)
from engines.train.spatial import stage_keys, train_stages  # noqa: E402

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


def test_trained_fakes_replace_a_share_of_the_blends(tmp_path):
    bank, fakes = _bank(), _bank(4)
    fakes.crops[:] = 255 - fakes.crops  # unlike any real, so the swap is visible
    maker = PairMaker(LOOSE, TARGET, SBIConfig(), AugmentConfig())
    swap = FakePairMaker(LOOSE, TARGET, AugmentConfig())
    data = PairDataset(bank, maker, fakes, 0.5, swap)
    items = [data[(i % len(bank), 100 + i)] for i in range(40)]
    known = [k for _, _, k in items]
    assert 8 < known.count(False) < 32  # about half
    crops, labels, masks, map_weight = collate_pairs(items[:4])
    assert labels.tolist() == [0, 1] * 4 and crops.shape == (8, 32, 32, 3)
    # Reals always supervise the boundary map (it is empty); a trained fake's is unknown.
    assert map_weight.tolist()[0::2] == [1.0] * 4
    assert map_weight.tolist()[1::2] == [1.0 if k else 0.0 for k in known[:4]]
    with pytest.raises(ValueError, match="trained fakes"):
        PairDataset(bank, maker, None, 0.3, swap)
    # A stage with fake_share trains on them; its checkpoint key names the fake files.
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 1,
                            "stages": [{}, {"fake_share": 0.5, "lr": 0.001}]}}
    _, hist, _ = train_stages(cfg, bank, TARGET, LOOSE, tmp_path, fakes=fakes)
    assert [h["stage"] for h in hist] == [1, 2] and np.isfinite(hist[-1]["loss"])
    keys = stage_keys(cfg, bank.files, fakes.files)
    other = stage_keys(cfg, bank.files, fakes.files[:1])
    assert keys[0] == other[0] and keys[1] != other[1]


def test_colour_matching_gives_the_reference_palette():
    import cv2

    rng = np.random.default_rng(0)
    warm = np.clip(rng.normal((60, 120, 200), 20, (32, 32, 3)), 0, 255).astype(np.uint8)
    cool = np.clip(rng.normal((190, 130, 70), 10, (32, 32, 3)), 0, 255).astype(np.uint8)
    out = match_colour(warm, cool)
    lab = [cv2.cvtColor(x, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(float) for x in (out, cool)]
    assert np.allclose(lab[0].mean(0), lab[1].mean(0), atol=2.0)
    assert np.allclose(lab[0].std(0), lab[1].std(0), atol=2.0)


def test_padding_beyond_a_generated_still_is_shared_by_its_real_partner():
    # A tight generated portrait runs off its image (black padding); a real photo does not.
    # The pair must not differ there, or the padding becomes the cue.
    still = AugmentConfig(jitter_rotate=0, jitter_scale=(1, 1), jitter_translate=0, hflip_p=0,
                          color_p=0, jpeg_p=0, resize_p=0, blur_p=0, noise_p=0, cutout_p=0)
    real = np.full((LOOSE.size, LOOSE.size, 3), 120, np.uint8)
    fake = np.full((LOOSE.size, LOOSE.size, 3), 200, np.uint8)
    fake[-LOOSE.size // 5:] = 0
    r, f = FakePairMaker(LOOSE, TARGET, still)(real, fake, np.random.default_rng(0))
    black_r, black_f = r.max(axis=2) == 0, f.max(axis=2) == 0
    assert black_f.any() and np.array_equal(black_r, black_f)
    # The rest of the real is untouched but for the one-pixel soft edge of the padding.
    assert (r[~black_r] == 120).all(axis=1).mean() > 0.95


def test_a_trained_fake_faces_only_reals_as_large_as_a_still_when_asked():
    # Small faces are upsampled to the crop, hence softer: paired with sharp generated stills,
    # softness would become the cue. With a minimum eye distance, only large reals partner.
    bank, fakes = _bank(), _bank(4)
    bank.interocular = np.array([20.0, 30.0, 60.0, 70.0, 25.0, 90.0], np.float32)
    fakes.crops[:] = 255 - fakes.crops
    maker = PairMaker(LOOSE, TARGET, SBIConfig(), AugmentConfig())
    plain = AugmentConfig(jitter_rotate=0, jitter_scale=(1, 1), jitter_translate=0, hflip_p=0,
                          color_p=0, jpeg_p=0, resize_p=0, blur_p=0, noise_p=0, cutout_p=0)
    data = PairDataset(bank, maker, fakes, 1.0, FakePairMaker(LOOSE, TARGET, plain),
                       partner_min_interocular=48)
    large = center_crop(bank.crops[[2, 3, 5]], LOOSE, TARGET)
    for i in range(12):
        (pair, _, known) = data[(i % len(bank), 500 + i)]
        real = pair[0].numpy()
        assert not known and any(np.abs(real.astype(int) - c.astype(int)).mean() < 1 for c in large)
    with pytest.raises(ValueError, match="no real faces"):
        PairDataset(bank, maker, fakes, 1.0, FakePairMaker(LOOSE, TARGET, plain),
                    partner_min_interocular=100)


def test_h264_augmentation_codes_a_pair_alike_as_intra_frames():
    from engines.train.augment import augment_pair

    rng = np.random.default_rng(0)
    image = cv2_blurred(rng.integers(30, 220, (64, 64, 3)).astype(np.uint8))
    cfg = AugmentConfig(video_p=1.0, video_crf=(38, 38), color_p=0.0, jpeg_p=0.0, resize_p=0.0,
                        blur_p=0.0, noise_p=0.0, cutout_p=0.0)
    real, fake = augment_pair([image, image.copy()], np.random.default_rng(1), cfg)
    np.testing.assert_array_equal(real, fake)
    assert real.shape == image.shape
    assert np.abs(real.astype(int) - image.astype(int)).mean() > 0.5


def cv2_blurred(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 1.5)


@pytest.mark.parametrize("old, new, named", [
    ("  jpeg_quality: [40, 100]\n", "  jpeg_quality: [40, 100]\n  video_p: 1.5\n", "augment.video_p"),
    ("        gray_p: 0.05\n", "        gray_p: 0.05\n        video_crf: [30, 20]\n",  # stage 2
     "augment.video_crf"),
])
def test_a_wrong_augment_value_is_named_before_any_work(tmp_path, capsys, old, new, named):
    """In the base section or a stage's override: exit 2 naming it, nothing written."""
    from pathlib import Path

    from engines.train.spatial import main

    text = Path("configs/train/spatial-sbi.yaml").read_text()
    assert text.count(old) == 1
    config = tmp_path / "bad.yaml"
    config.write_text(text.replace(old, new))
    work = tmp_path / "work"
    code = main(["--config", str(config), "--data", str(tmp_path), "--work", str(work)])
    assert code == 2 and named in capsys.readouterr().err
    assert not work.exists()
