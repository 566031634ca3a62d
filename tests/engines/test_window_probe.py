"""The pseudo-fake probe of a temporal pack, on a few real validation videos of the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.train.window_probe import main, probe


@pytest.mark.data
def test_probe_scores_the_shipped_pack_against_its_own_and_a_new_variant(data_dir, tmp_path):
    result = probe(Path("temporal-sbi"), Path("configs/train/temporal-sbi.yaml"), data_dir,
                   ["clip", "reenact"], per_video=3, cache=tmp_path, max_videos=3)
    assert set(result) == {"clip", "reenact"}
    for row in result.values():
        assert row["windows"] > 0 and 0.0 <= row["auc"] <= 1.0
    # The self-blends it was trained on are told from the real windows they were made from.
    assert result["clip"]["auc"] > 0.6


def test_an_unknown_variant_is_named(capsys):
    with pytest.raises(SystemExit):
        main(["--data", ".", "--variants", "clip,swap"])
    assert "unknown ['swap']" in capsys.readouterr().err
