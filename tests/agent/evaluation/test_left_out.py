"""The left-out-family table: each fold's figures next to the detection targets."""

from __future__ import annotations

import json

from agent.evaluation import left_out
from agent.evaluation.card_sections import with_section


def report(kind: str, auc: float, fakes: int, reals: int, alerting: int = 0,
           flagged: int = 0) -> dict:
    return {
        "by_kind": {kind: {}},
        "overall": {"video": {"auc": auc, "auc_ci95": [auc - 0.1, min(1.0, auc + 0.05)],
                              "n_fake": fakes, "n_real": reals}},
        "alerts": {"fake_videos": {"files": fakes, "alerting": alerting, "share": alerting / fakes},
                   "real_videos": {"files": reals, "alerting": 0, "share": 0.0}},
        "agent_verdicts": {"fake": {"fake": flagged, "real": fakes - flagged, "unknown": 0}},
    }


def test_rows_say_which_targets_are_met_and_how_many_fakes_alert():
    rows = [left_out.row("lip_sync", report("video", 0.93, 7, 26, alerting=5)),
            left_out.row("talking_head", report("video", 0.61, 9, 28, alerting=1)),
            left_out.row("gan_face", report("image", 0.96, 100, 21, flagged=40))]
    text = left_out.table(rows, 0.887)
    assert "| lip_sync | video | 7 | 26 | 0.930 (0.83-0.98) | 0.90 | yes | 71% | 0% |" in text
    assert "| talking_head | video | 9 | 28 | 0.610 (0.51-0.66) | 0.90 | no | 11% | 0% |" in text
    assert "| gan_face | image | 100 | 21 | 0.960 (0.86-1.00) | 0.95 | yes | 40% | - |" in text
    assert "Fake videos alerting over all video folds: 6 of 16" in text


def test_collect_tables_the_reports_already_run(tmp_path, monkeypatch, capsys):
    folds = tmp_path / "folds"
    for name, rep in {"lip_sync": report("video", 0.9, 7, 26, 3)}.items():
        (folds / name).mkdir(parents=True)
        (folds / name / "eval.csv").write_text("path,label,kind\n")
        (folds / f"{name}.eval.json").write_text(json.dumps(rep))
    assert left_out.main(["--folds", str(folds), "--collect"]) == 0
    assert "| lip_sync | video | 7 | 26 | 0.900" in capsys.readouterr().out


def test_the_card_section_is_replaced_not_repeated():
    text = with_section("# card\n\n## Limitations\n\n- x\n", left_out.TITLE, "first")
    text = with_section(text, left_out.TITLE, "second")
    assert text.count(left_out.TITLE) == 1 and "second" in text and "first" not in text


def test_a_perturbed_run_keeps_its_reports_apart_and_never_writes_the_card(tmp_path, capsys):
    import pytest

    folds = tmp_path / "folds"
    for name, rep, kind in (("lip_sync", report("video", 0.8, 7, 26, 1), "video"),
                            ("gan_face", report("image", 0.7, 100, 21, flagged=3), "image")):
        (folds / name).mkdir(parents=True)
        (folds / name / "eval.csv").write_text(f"path,label,kind\nx,fake,{kind}\n")
        (folds / f"{name}.jpeg-3.eval.json").write_text(json.dumps(rep))
    (folds / "lip_sync.eval.json").write_text(json.dumps(report("video", 0.95, 7, 26, 5)))
    assert left_out.main(["--folds", str(folds), "--collect", "--perturb", "jpeg:3",
                          "--videos-only"]) == 0
    out = capsys.readouterr().out
    assert "degraded by jpeg:3" in out and "| lip_sync | video | 7 | 26 | 0.800" in out
    assert "gan_face" not in out
    with pytest.raises(SystemExit):
        left_out.main(["--folds", str(folds), "--perturb", "jpeg:3", "--write-card"])
