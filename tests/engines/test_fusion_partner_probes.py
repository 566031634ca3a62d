"""The deep model's partner experiments choose and train honestly: no fold's own files pick its
weights, and no file any fold measures teaches the upsampler or the head."""

from __future__ import annotations

import numpy as np
import pytest

from engines.train import deep
from engines.train.temporal_partner_probe import (
    FileParts,
    above_every_real,
    chosen_weights,
    fold_aucs,
)
from tests.engines.test_train_deep import files_for, paired_spec


def parts(rng, shift_temporal: float) -> list[FileParts]:
    out = []
    for label in (0,) * 20 + (1,) * 10:
        out.append(FileParts(label, rng.normal() + 0.5 * label, rng.normal(),
                             rng.normal() + shift_temporal * label, True))
    return out


def test_a_folds_weights_are_chosen_on_the_other_folds_only():
    rng = np.random.default_rng(0)
    # Fold a: the temporal logit separates its fakes; folds b and c: it is noise.
    tables = {"a": fold_aucs(parts(rng, 3.0)), "b": fold_aucs(parts(rng, 0.0)),
              "c": fold_aucs(parts(rng, 0.0))}
    own_best = max(tables["a"], key=tables["a"].get)
    pick = chosen_weights(tables, "a")
    others_mean = {k: np.mean([tables["b"][k], tables["c"][k]]) for k in tables["b"]}
    assert others_mean[pick] == max(others_mean.values())
    assert own_best[1] > 0 and tables["a"][pick] <= tables["a"][own_best]
    with pytest.raises(ValueError):
        chosen_weights({"a": tables["a"]}, "a")


def test_above_every_real_counts_fakes_past_the_highest_real():
    reals = [FileParts(0, v, 0.0, 0.0, True) for v in (0.1, 0.5, 0.9)]
    fakes = [FileParts(1, v, 0.0, 0.0, True) for v in (0.2, 0.95, 1.5)]
    assert above_every_real(reals + fakes, 0.4, 0.0) == 2


def test_the_upsampler_learns_from_and_adds_to_no_measured_file():
    torch = pytest.importorskip("torch", reason="the upsampler experiment needs torch (train extra)")
    from engines.train.upsampler_probe import (
        UPSAMPLED,
        Upsampler,
        autoencoder_entries,
        upsampled_files,
    )

    rng = np.random.default_rng(0)
    files = files_for(rng, paired_spec(5, stills=True), {})
    val_real = {"r0", "s1"}
    entries = [f.entry for f in files]
    learn = {e.group for e in autoencoder_entries(entries, val_real)}
    measured_groups = set(val_real)
    for fold in ("face_swap", "lip_sync"):
        _, _, test = deep.fold_sets(files, fold, val_real)
        measured_groups |= {f.entry.group for f in test}
    assert learn and not learn & measured_groups

    copies = upsampled_files(files, {f.entry.rel: f.x for f in files})
    assert copies and all(c.fold == UPSAMPLED and c.entry.is_fake for c in copies)
    rows = files + copies
    for fold in ("face_swap", "lip_sync"):
        fold_files, train, test = deep.fold_sets(rows, fold, val_real)
        assert not any(f.fold == UPSAMPLED for f in test)
        left_out = {f.entry.group for f in fold_files} | val_real
        assert not any(f.fold == UPSAMPLED and f.entry.group in left_out for f in train)

    net = Upsampler(width=8)
    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 3, 224, 224)
