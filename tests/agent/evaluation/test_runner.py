"""The evaluation runner and its report, on synthetic media with a plumbing model pack.

The plumbing model measures nothing (brighter crop = more fake); these tests check what a
user reads in the report: which files were judged, which are unknown and why, that the
numbers follow the frame/video protocol, and the JSON's shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from agent.config import load_config
from agent.evaluation import (
    Evaluator,
    Perturbation,
    StillsPolicy,
    build_report,
    format_report,
    read_eval_manifest,
    to_json,
)
from agent.evaluation.report import file_row
from engines import metrics

README = Path(__file__).resolve().parents[3] / "agent" / "evaluation" / "README.md"


def make_evaluator(pack: Path, detector, **kwargs) -> Evaluator:
    quality = kwargs.pop("quality", {})
    config = load_config(models={"spatial": str(pack), "temporal": None, "deep": None}, faces={"quality": quality})
    return Evaluator(config, detector=detector, **kwargs)


@pytest.fixture(scope="module")
def evaluator(plumbing_pack, detector) -> Evaluator:
    return make_evaluator(plumbing_pack, detector)


@pytest.fixture(scope="module")
def items(media_set):
    return read_eval_manifest(media_set.manifest)


@pytest.fixture(scope="module")
def clean(evaluator, items):
    results = evaluator.run(items)
    return results, build_report(results, threshold=evaluator.threshold, protocol={"test": True})


def by_path(results, path):
    return next(r for r in results if r.item.rel == path)


def test_blank_image_is_unknown_and_never_a_correct_real(clean):
    results, report = clean
    blank = by_path(results, "blank.png")
    assert (blank.status, blank.unknown_reason, blank.verdict) == ("unknown", "no_face", "unknown")
    counts = report["counts"]
    assert (counts["files"], counts["judged"], counts["unknown"]) == (6, 5, 1)
    # Left out of every metric: 2 judged reals (real.mp4, face.jpg), 3 judged fakes.
    assert (report["overall"]["video"]["n_real"], report["overall"]["video"]["n_fake"]) == (2, 3)
    assert report["unknown"]["files"] == pytest.approx(1 / 6, abs=1e-4)
    assert report["unknown"]["real_files"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["unknown"]["file_reasons"] == {"no_face": 1}
    assert report["agent_verdicts"]["real"]["unknown"] == 1


def test_scores_follow_the_frame_then_video_protocol(clean):
    results, report = clean
    real = by_path(results, "real.mp4")
    assert 29 <= real.frames_analysed <= 31  # 3 s at the default 10 fps
    assert real.frames_judged == real.face_frames == real.frames_analysed  # one clear face
    frames, scores = real.frame_scores()
    assert len(frames) == real.frames_judged
    assert real.video_score == pytest.approx(scores.mean())
    # The report's metrics are those of the per-file rows' scores: recompute from the rows.
    rows = [r for r in report["files"] if r["status"] == "judged"]
    y = [int(r["label"] == "fake") for r in rows]
    s = [r["video_score"] for r in rows]
    assert report["overall"]["video"]["auc"] == pytest.approx(metrics.auc(y, s), abs=1e-3)
    low, high = report["overall"]["video"]["auc_ci95"]  # resampled files: around the AUC
    assert low <= report["overall"]["video"]["auc"] <= high
    assert [low, high] == pytest.approx(list(metrics.auc_interval(y, s)), abs=1e-3)
    accuracy = np.mean([(p >= report["protocol"]["threshold"]) == bool(t) for p, t in zip(s, y)])
    assert report["overall"]["video"]["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert report["overall"]["frame"]["n"] == sum(r["frames_judged"] for r in rows)


def test_metrics_per_method_and_family(clean):
    _, report = clean
    methods = {"face_swap:demo_sbi", "face_swap:demo_sbi_again", "gan_face:test"}
    assert set(report["per_method"]) == methods
    assert set(report["per_family"]) == {"face_swap", "gan_face"}
    for block in report["per_method"].values():  # each method's fakes against all judged reals
        assert (block["video"]["n_fake"], block["video"]["n_real"], block["files"]) == (1, 2, 1)
    assert report["per_family"]["face_swap"]["video"]["n_fake"] == 2
    assert set(report["by_kind"]) == {"video", "image"}
    assert report["by_kind"]["image"]["video"]["n"] == 2  # face.jpg and fake_face.jpg


def test_stills_are_judged_at_the_spatial_threshold_when_a_temporal_model_fuses(
    plumbing_pack, detector, items, clean, tmp_path
):
    from tests.support.packs import temporal_plumbing_pack

    temporal = temporal_plumbing_pack(tmp_path / "t", alert_threshold=0.99)
    config = load_config(models={"spatial": str(plumbing_pack), "temporal": str(temporal),
                                 "deep": None})
    fusing = Evaluator(config, detector=detector)
    stills = [i for i in items if i.kind == "image"]
    results = fusing.run(stills)
    report = build_report(results, threshold=fusing.threshold,
                          still_threshold=fusing.still_threshold, protocol={})
    assert (report["protocol"]["threshold"], report["protocol"]["still_threshold"]) == (0.99, 0.5)
    alone = {r.item.rel: r.verdict for r in clean[0] if r.item.kind == "image"}
    assert {r.item.rel: r.verdict for r in results} == alone
    assert report["by_kind"]["image"] == clean[1]["by_kind"]["image"]


def test_each_fused_model_is_also_measured_on_its_own(plumbing_pack, detector, items, clean,
                                                      tmp_path):
    from tests.support.packs import temporal_plumbing_pack

    temporal = temporal_plumbing_pack(tmp_path / "t")
    config = load_config(models={"spatial": str(plumbing_pack), "temporal": str(temporal),
                                 "deep": None})
    fusing = Evaluator(config, detector=detector)
    results = fusing.run(items)
    report = build_report(results, threshold=fusing.threshold,
                          still_threshold=fusing.still_threshold, protocol={})
    assert list(report["by_model"]) == ["spatial", "temporal"]
    # The spatial member scores as it does when it runs alone (same faces, same probabilities).
    spatial, alone = report["by_model"]["spatial"]["overall"], clean[1]["overall"]
    for level in ("frame", "video"):
        assert spatial[level]["n"] == alone[level]["n"]
        assert spatial[level]["auc"] == pytest.approx(alone[level]["auc"], abs=1e-4)
    # The temporal model judges videos only, and only once a track has a full window of 8.
    temporal_block = report["by_model"]["temporal"]
    videos = [r for r in results if r.status == "judged" and r.item.kind == "video"]
    assert temporal_block["files"] == len(videos)
    assert temporal_block["overall"]["frame"]["n"] == sum(r.frames_judged - 7 for r in videos)
    assert set(temporal_block["per_family"]) <= set(report["per_family"])
    text = format_report(report)
    assert "video AUC by model" in text
    assert re.search(rf"^temporal\s+{len(videos)}\s", text, re.MULTILINE)
    # The model card's section carries the same comparison.
    from agent.evaluation.card_sections import eval_body

    card = eval_body({**report, "protocol": {"analysis_fps": 10, "detector": {"type": "d"},
                                             "detect_every": 3, "models": {}, "files": 6,
                                             "wall_time_s": 1.0}}, "verity eval")
    assert f"| spatial alone | {spatial['video']['auc']:.3f} |" in card
    assert "| temporal alone |" in card


def test_faces_refused_by_the_quality_gate_are_unknown(plumbing_pack, detector, items):
    strict = make_evaluator(plumbing_pack, detector, quality={"min_interocular_px": 1000})
    results = strict.run([i for i in items if i.rel in ("real.mp4", "face.jpg")])
    report = build_report(results, threshold=strict.threshold, protocol={})
    for r in results:
        assert r.status == "unknown" and r.unknown_reason == "all_faces_refused"
        assert r.faces_refused == r.faces > 0 and r.frames_unknown == r.face_frames > 0
    assert report["unknown"]["face_frames"] == 1.0
    assert report["unknown"]["refused_reasons"]["too_small"] > 0
    assert report["overall"]["video"]["n"] == 0 and report["overall"]["video"]["auc"] is None


def test_max_seconds_and_frame_rate_change(plumbing_pack, detector, items):
    real = next(i for i in items if i.rel == "real.mp4")
    capped = make_evaluator(plumbing_pack, detector, max_seconds=2.0)
    assert 19 <= capped.evaluate(real).frames_analysed <= 21  # of 30 at 10 fps
    two_fps = capped.evaluate(real, Perturbation("fps", 5))  # 2 fps, first 2 s
    assert two_fps.status == "judged" and two_fps.frames_analysed == 4


def test_frame_perturbations_reach_the_pipeline_and_repeat(evaluator, items, clean):
    real = next(i for i in items if i.rel == "real.mp4")
    clean_score = by_path(clean[0], "real.mp4").video_score
    noisy = [evaluator.evaluate(real, Perturbation("noise", 3)) for _ in range(2)]
    assert noisy[0].judged_probabilities == noisy[1].judged_probabilities  # seeded per frame
    darker = evaluator.evaluate(real, Perturbation("contrast", 5))
    assert darker.video_score != pytest.approx(clean_score, abs=1e-3)
    still = next(i for i in items if i.rel == "face.jpg")
    small = evaluator.evaluate(still, Perturbation("resolution", 5))  # 107 x 80: face too small
    assert small.status == "unknown"


def test_stills_policy_reencodes_every_still_alike(plumbing_pack, detector, items, astronaut):
    face = next(i for i in items if i.rel == "face.jpg")
    policy = StillsPolicy(max_side=320, jpeg_quality=50)
    sized = make_evaluator(plumbing_pack, detector, stills=policy)
    out = sized.prepare_still(face, astronaut)
    assert out.shape == (240, 320, 3) and not np.array_equal(out, astronaut[::2, ::2])
    eye = make_evaluator(plumbing_pack, detector, stills=StillsPolicy(eye_px=24))
    small = eye.prepare_still(face, astronaut)
    assert detector.detect(small).interocular.max() == pytest.approx(24, rel=0.15)
    huge = make_evaluator(plumbing_pack, detector, stills=StillsPolicy(eye_px=1000, max_side=4000))
    assert huge.prepare_still(face, astronaut).shape == astronaut.shape  # never upscaled


def test_missing_and_broken_files_are_reported_not_raised(evaluator, media_set, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 4096)
    csv = tmp_path / "m.csv"
    csv.write_text("path,label\nabsent.mp4,fake\nbroken.mp4,real\n")
    results = evaluator.run(read_eval_manifest(csv))
    assert [r.status for r in results] == ["missing", "failed"]
    assert "no such file" in results[0].error and results[1].error
    report = build_report(results, threshold=0.5, protocol={})
    counts = report["counts"]
    assert (counts["missing"], counts["failed"], report["unknown"]["files"]) == (1, 1, None)


def test_json_document_has_the_documented_keys(clean):
    _, report = clean
    document = json.loads(to_json(report), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert list(document) == [
        "schema", "protocol", "counts", "unknown", "overall", "by_kind", "per_method",
        "per_family", "by_model", "agent_verdicts", "alerts", "files",
    ]
    assert set(document["overall"]) == {"frame", "video"}
    metric_keys = {"n", "n_fake", "n_real", "auc", "ap", "eer", "accuracy", "log_loss"}
    assert set(document["overall"]["frame"]) == metric_keys
    assert set(document["overall"]["video"]) == metric_keys | {"auc_ci95"}
    assert len(document["files"]) == 6
    # The README documents every key a user will find.
    readme = README.read_text()
    documented = set(re.findall(r"[a-z_]+", readme))
    keys = [*document, *document["counts"], *document["unknown"], *document["files"][0],
            *document["by_model"]["spatial"], *document["alerts"],
            *document["alerts"]["fake_videos"]]
    for key in keys:
        assert key in documented, f"{key} is not in agent/evaluation/README.md"
    assert set(file_row(clean[0][0])) == set(document["files"][0])


def test_alerts_are_what_the_shipped_agent_raises_live(tmp_path, detector):
    from agent.demo.clip import build_clip
    from agent.evaluation.card_sections import eval_body

    build_clip(tmp_path / "real.mp4", real_seconds=5, fake_seconds=0)
    build_clip(tmp_path / "swapped.mp4", real_seconds=3, fake_seconds=5)  # blended from 3 s
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,method\nreal.mp4,real,\nswapped.mp4,fake,face_swap:demo\n")
    shipped = Evaluator(load_config(), detector=detector)  # the shipped models and threshold
    results = shipped.run(read_eval_manifest(csv))
    real, fake = by_path(results, "real.mp4"), by_path(results, "swapped.mp4")
    assert not real.alerted and real.first_alert_s is None
    assert fake.alerted and 3.0 < fake.first_alert_s < 8.0  # after the blend starts
    report = build_report(results, threshold=shipped.threshold, protocol={})
    alerts = report["alerts"]
    assert alerts["fake_videos"] == {"files": 1, "alerting": 1, "share": 1.0}
    assert alerts["real_videos"] == {"files": 1, "alerting": 0, "share": 0.0}
    assert alerts["fake_first_alert_s"]["median"] == pytest.approx(fake.first_alert_s, abs=0.01)
    assert alerts["per_family"] == {"face_swap": {"files": 1, "alerting": 1, "share": 1.0}}
    line = f"1 of 1 fake videos (first alert at {fake.first_alert_s:.1f} s); 0 of 1 real videos"
    assert line in format_report(report)
    assert line in eval_body({**report, "protocol": {**report["protocol"], "analysis_fps": 10,
                                                     "detector": {"type": "mediapipe"},
                                                     "detect_every": 3, "models": {},
                                                     "files": 2, "wall_time_s": 1}}, "verity eval")


@pytest.mark.data
def test_project_media_decodes_and_is_judged(data_dir, plumbing_pack, detector):
    items = read_eval_manifest(data_dir / "manifest.csv")
    pick = [
        next(i for i in items if i.kind == kind and i.label == label)
        for kind in ("video", "image")
        for label in ("real", "fake")
    ]
    evaluator = make_evaluator(
        plumbing_pack, detector, max_seconds=2.0, stills=StillsPolicy(eye_px=48, jpeg_quality=90)
    )
    results = evaluator.run(pick)
    assert [r.status for r in results if r.status in ("missing", "failed")] == []
    assert sum(r.status == "judged" for r in results) >= 3
