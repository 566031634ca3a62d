"""The student experiment's label-free student learns from no file any fold measures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch (the train extra)")

from engines.train import deep  # noqa: E402
from engines.train.student_probe import feature_rows  # noqa: E402
from tests.engines.test_train_deep import files_for, paired_spec  # noqa: E402


def test_the_feature_student_trains_on_no_measured_file():
    rng = np.random.default_rng(0)
    files = files_for(rng, paired_spec(5, stills=True), {})
    blends = [dataclasses.replace(f, entry=dataclasses.replace(f.entry, label="fake", method="self_blend:sbi"),
                                  fold=deep.SELF_BLEND) for f in files if f.fold == "real"]
    files += blends
    val_real = {"r0", "s1"}
    rows = feature_rows(files, val_real)
    assert rows and not any(f.entry.is_fake and f.fold != deep.SELF_BLEND for f in rows)
    measured_groups = set(val_real)
    for fold in ("face_swap", "lip_sync"):
        fold_files, _, test = deep.fold_sets(files, fold, val_real)
        measured_groups |= {f.entry.group for f in test}
    assert not {f.entry.group for f in rows} & measured_groups
    assert any(f.fold == deep.SELF_BLEND for f in rows)  # the self-blends of its reals stay
