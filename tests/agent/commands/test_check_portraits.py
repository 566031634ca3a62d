"""`verity engines check-portraits`: real photos that ship in installed packages, scored by a
per-crop pack at the threshold the agent would judge a photo at."""

from __future__ import annotations

import json
import shutil

from agent.cli import main
from engines.registry import ModelCard, resolve_pack, write_card


def test_the_shipped_spatial_pack_raises_no_false_alarm(capsys):
    assert main(["engines", "check-portraits"]) == 0
    out = capsys.readouterr().out
    assert "skimage astronaut" in out and "0 of " in out and "FALSE ALARM" not in out


def test_a_pack_that_calls_every_face_fake_fails_naming_the_photos(tmp_path, capsys):
    shipped = resolve_pack("spatial-sbi")
    folder = tmp_path / "eager"
    shutil.copytree(shipped.folder, folder)
    card = ModelCard.model_validate(json.loads((folder / "card.json").read_text()))
    eager = card.calibration.model_copy(update={"bias": 8.0})
    card = card.model_copy(update={"calibration": eager})
    write_card(folder, card)
    argv = ["engines", "check-portraits", "--pack", str(folder), "--pack", "temporal-sbi"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.count("FALSE ALARM") >= 4 and "skimage astronaut" in out
    assert "temporal-sbi@" in out and "skipped" in out


def test_photos_are_also_judged_as_the_agent_judges_them_under_the_fused_rule(capsys):
    from tests.support.packs import installed_deep_pack

    deep = installed_deep_pack()
    assert main(["engines", "check-portraits"]) == 0
    out = capsys.readouterr().out
    fused = out.split(f"{deep.id} fused with ")[1]
    assert "deep_rule fused" in fused.splitlines()[0]
    assert "Tom_Hanks" in fused and "0 of " in fused and "FALSE ALARM" not in fused
