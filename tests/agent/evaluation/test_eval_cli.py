"""`verity eval` from the command line: results, sweeps, and clear errors with exit codes."""

from __future__ import annotations

import json
import re

import pytest

from agent.cli import main
from agent.config import QualityConfig
from engines.perturbations import TYPES


def verity_eval(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["eval", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write_manifest(tmp_path, text: str):
    path = tmp_path / "m.csv"
    path.write_text(text)
    return path


def test_missing_manifest_exits_2_naming_it(capsys, tmp_path, pack_env):
    code, _, err = verity_eval(capsys, "--manifest", str(tmp_path / "absent.csv"))
    assert code == 2 and "absent.csv: no such file" in err


def test_manifest_without_label_column(capsys, tmp_path, pack_env):
    manifest = write_manifest(tmp_path, "path,class\nx.jpg,real\n")
    code, _, err = verity_eval(capsys, "--manifest", str(manifest))
    assert code == 2 and "no 'label' column" in err


def test_bad_label_value_names_the_line(capsys, tmp_path, pack_env):
    manifest = write_manifest(tmp_path, "path,label\nx.jpg,real\ny.jpg,deepfake\n")
    code, _, err = verity_eval(capsys, "--manifest", str(manifest))
    assert code == 2 and "line 3" in err and "'deepfake'" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--perturb", "sepia:1"], "unknown perturbation type 'sepia'; known: " + ", ".join(TYPES)),
        (["--perturb", "blur:7"], "level 7 is not one of 1, 2, 3, 4, 5"),
        (["--sweep", "--types", "blur,warp"], "'warp'"),
        (["--sweep", "--levels", "1,6"], "level 6"),
        (["--types", "blur"], "go with --sweep"),
    ],
)
def test_unknown_perturbations_exit_2(capsys, media_set, pack_env, args, message):
    code, _, err = verity_eval(capsys, "--manifest", str(media_set.manifest), *args)
    assert code == 2 and message in err


def test_missing_media_is_reported_the_rest_evaluated_exit_1(capsys, media_set, tmp_path, pack_env):
    manifest = write_manifest(
        tmp_path,
        f"path,label\n{media_set.folder / 'face.jpg'},real\n"
        f"{media_set.folder / 'fake_face.jpg'},fake\n"
        "gone/clip.mp4,fake\n",
    )
    out_json = tmp_path / "r.json"
    code, out, err = verity_eval(capsys, "--manifest", str(manifest), "--json", str(out_json))
    assert code == 1
    assert "gone/clip.mp4: missing (clean)" in err
    assert "1 of 3 files could not be evaluated (1 missing" in err
    report = json.loads(out_json.read_text())
    assert (report["counts"]["judged"], report["counts"]["missing"]) == (2, 1)
    assert "2 judged" in out and "1 missing" in out


def test_eval_prints_a_table_and_writes_json(capsys, media_set, tmp_path, pack_env):
    out_json = tmp_path / "r.json"
    code, out, _ = verity_eval(
        capsys, "--manifest", str(media_set.manifest), "--json", str(out_json),
        "--max-seconds", "1", "--analysis-fps", "5",
    )
    assert code == 0
    expected = ("6 files (3 real, 3 fake): 5 judged, 1 unknown", "method gan_face:test",
                "family face_swap")
    for text in expected:
        assert text in out
    report = json.loads(out_json.read_text())
    assert report["protocol"]["analysis_fps"] == 5.0 and report["protocol"]["max_seconds"] == 1.0
    assert report["protocol"]["models"] == {"spatial": "plumbing@0.0.1"}
    assert report["protocol"]["quality"] == QualityConfig().model_dump()  # the gate that judged
    assert all(r["frames_analysed"] <= 6 for r in report["files"] if r["kind"] == "video")


def test_json_to_stdout(capsys, media_set, pack_env):
    code, out, _ = verity_eval(
        capsys, "--manifest", str(media_set.manifest), "--kind", "image", "--json", "-"
    )
    assert code == 0
    report = json.loads(out)
    assert report["schema"] == "verity-eval/1" and report["counts"]["files"] == 3


def test_sweep_table_and_document(capsys, media_set, tmp_path, pack_env):
    out_json = tmp_path / "sweep.json"
    code, out, _ = verity_eval(
        capsys, "--manifest", str(media_set.manifest), "--sweep", "--types", "blur,fps",
        "--levels", "1,5", "--max-seconds", "1", "--analysis-fps", "5", "--json", str(out_json),
    )
    assert code == 0
    sweep = json.loads(out_json.read_text())
    assert sweep["schema"] == "verity-eval-sweep/1"
    conditions = [c["condition"] for c in sweep["conditions"]]
    assert conditions == ["clean", "blur:1", "blur:5", "fps:1", "fps:5"]
    table = sweep["table"]
    assert set(table["types"]) == {"blur", "fps"}
    assert set(table["types"]["blur"]["levels"]) == {"1", "5"}
    for name, entry in table["types"].items():
        aucs = [lv["video_auc"] for lv in entry["levels"].values()]
        if None not in aucs:
            assert entry["video_auc_mean"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-4)
            assert entry["video_auc_loss_points"] == pytest.approx(
                100 * (table["clean"]["video_auc"] - entry["video_auc_mean"]), abs=0.01
            )
    assert "level 1" in out and "level 5" in out and "loss (pts)" in out
    assert sweep["protocol"]["types_run"] == ["blur", "fps"]


def test_split_keeps_the_validation_groups(capsys, media_set, tmp_path, pack_env):
    config = tmp_path / "train.yaml"
    config.write_text("split:\n  val_fraction: 0.0\n  seed: 0\n")
    code, out, _ = verity_eval(
        capsys, "--manifest", str(media_set.manifest), "--split", "validation",
        "--split-config", str(config), "--kind", "image", "--json", "-",
    )
    assert code == 0
    report = json.loads(out)
    # Groups with a fake: id_a (videos, dropped by --kind) and id_d (fake_face.jpg) only.
    assert [r["path"] for r in report["files"]] == ["fake_face.jpg"]
    split = report["protocol"]["split"]  # the split itself, before --kind
    assert (split["groups"], split["files"], split["val_fraction"]) == (2, 4, 0.0)


def test_list_perturbations_needs_no_manifest(capsys):
    code, out, _ = verity_eval(capsys, "--list-perturbations")
    assert code == 0 and all(f"`{name}`" in out for name in TYPES)


def test_write_card_puts_the_figures_and_the_command_in_the_pack_card(capsys, media_set, tmp_path, pack_env):
    from agent.evaluation.card_sections import EVAL_TITLE, SWEEP_TITLE

    card = pack_env / "MODEL_CARD.md"
    card.write_text("# plumbing\n\n## Limitations\n\n- a test pack\n")
    out_json = tmp_path / "r.json"
    for _ in range(2):  # a second run replaces the section
        code, out, _ = verity_eval(capsys, "--manifest", str(media_set.manifest), "--max-seconds", "1",
                                   "--json", str(out_json), "--write-card")
        assert code == 0 and f"updated {card}" in out
    text = card.read_text()
    assert text.count(EVAL_TITLE) == 1 and text.index(EVAL_TITLE) < text.index("## Limitations")
    assert f"verity eval --manifest DATA/{media_set.manifest.name} --max-seconds 1" in text
    assert str(media_set.manifest.parent) not in text  # no machine paths in a card
    report = json.loads(out_json.read_text())
    video = report["by_kind"]["video"]["video"]
    assert f"max_yaw {report['protocol']['quality']['max_yaw']:g}" in text  # the gate it ran with
    low, high = video["auc_ci95"]
    assert f"| all videos | {video['n_fake']} | {video['auc']:.3f} ({low:.3f}-{high:.3f}) |" in text

    code, _, _ = verity_eval(capsys, "--manifest", str(media_set.manifest), "--sweep", "--types", "blur",
                             "--levels", "1", "--max-seconds", "1", "--write-card")
    assert code == 0
    text = card.read_text()
    assert text.count(SWEEP_TITLE) == 1 and text.count(EVAL_TITLE) == 1
    assert "--types blur --levels 1" in text and "loss (pts)" in text


def test_fused_sweep_measures_each_member_and_writes_its_card(capsys, media_set, tmp_path,
                                                              pack_env, monkeypatch):
    from agent.evaluation.card_sections import SWEEP_TITLE
    from tests.support.packs import temporal_plumbing_pack

    sweep_args = ["--manifest", str(media_set.manifest), "--sweep", "--types", "blur",
                  "--levels", "1,5", "--max-seconds", "1"]
    alone_json, fused_json = tmp_path / "alone.json", tmp_path / "fused.json"
    code, _, _ = verity_eval(capsys, *sweep_args, "--json", str(alone_json))
    assert code == 0
    alone = json.loads(alone_json.read_text())
    assert alone["by_model"] == {}  # one model decided: its table is the sweep's own

    temporal = temporal_plumbing_pack(tmp_path / "temporal")
    monkeypatch.setenv("VERITY_MODELS__TEMPORAL", str(temporal))
    spatial_card = pack_env / "MODEL_CARD.md"
    spatial_card.write_text("# plumbing\n\n## Limitations\n\n- a test pack\n")
    code, out, _ = verity_eval(capsys, *sweep_args, "--json", str(fused_json), "--write-card")
    assert code == 0
    fused = json.loads(fused_json.read_text())
    assert list(fused["by_model"]) == ["spatial", "temporal"]
    # The spatial member of the fused run scores as the spatial model alone, condition by
    # condition: one fused sweep measures both.
    member = fused["by_model"]["spatial"]
    assert member["clean"]["video_auc"] is not None
    assert member["clean"]["video_auc"] == pytest.approx(alone["table"]["clean"]["video_auc"],
                                                         abs=1e-4)
    for level, cell in alone["table"]["types"]["blur"]["levels"].items():
        assert member["types"]["blur"]["levels"][level]["video_auc"] == pytest.approx(
            cell["video_auc"], abs=1e-4)
    assert "video AUC by model" in out and re.search(r"^temporal\s", out, re.MULTILINE)
    # Each card gets its own table: the fused one in the temporal card, the member's in its own.
    assert f"updated {spatial_card}" in out and f"updated {temporal / 'MODEL_CARD.md'}" in out
    spatial_text = spatial_card.read_text()
    assert spatial_text.count(SWEEP_TITLE) == 1
    assert "This model's own probability (spatial) in the agent's fused run" in spatial_text
    assert f"clean {member['clean']['video_auc']:.3f}" in spatial_text
    temporal_text = (temporal / "MODEL_CARD.md").read_text()
    assert SWEEP_TITLE in temporal_text and "video AUC by model" in temporal_text
