"""The per-frame fusion of the spatial and temporal models, by the temporal card's rule."""

import math

import pytest

from agent.scoring import Fusion
from engines.registry import PackError, resolve_pack
from tests.support.packs import temporal_plumbing_pack


def test_max_takes_the_larger_calibrated_probability_whatever_the_logits():
    fusion = Fusion("max")
    assert fusion.fuse(0.3, 0.8, [5.0, 5.0], -5.0) == pytest.approx(0.8)  # temporal raises it
    assert fusion.fuse(0.9, 0.1, [-5.0], 5.0) == pytest.approx(0.9)  # and cannot lower it


def test_gated_max_lets_the_spatial_model_raise_the_score_only_past_its_gate():
    fusion = Fusion("gated_max", spatial_gate=0.8)
    assert fusion.fuse(0.3, 0.6, [5.0], 5.0) == pytest.approx(0.6)  # temporal speaks
    assert fusion.fuse(0.75, 0.2, [5.0], -5.0) == pytest.approx(0.2)  # spatial below its gate
    assert fusion.fuse(0.85, 0.2, [5.0], -5.0) == pytest.approx(0.85)  # spatial alarms: raises
    assert fusion.fuse(0.85, 0.95, [5.0], 5.0) == pytest.approx(0.95)  # and cannot lower it


def test_logistic_weighs_the_mean_spatial_logit_and_the_temporal_logit():
    fusion = Fusion("logistic", spatial=0.5, temporal=2.0, bias=-1.0)
    z = 0.5 * 2.0 + 2.0 * 0.25 - 1.0  # mean of [1, 3] is 2
    assert fusion.fuse(0.99, 0.01, [1.0, 3.0], 0.25) == pytest.approx(1 / (1 + math.exp(-z)))


def test_the_rule_comes_from_the_card_and_an_unknown_one_is_refused(tmp_path):
    pack = resolve_pack(temporal_plumbing_pack(tmp_path / "max", fusion={"rule": "max"}))
    assert Fusion.from_card(pack) == Fusion("max")
    old = resolve_pack(temporal_plumbing_pack(
        tmp_path / "old", fusion={"weights": {"spatial": 0.4, "temporal": 0.7}, "bias": 0.2}))
    assert Fusion.from_card(old) == Fusion("logistic", 0.4, 0.7, 0.2)  # packs before rules
    gated = resolve_pack(temporal_plumbing_pack(
        tmp_path / "gated", fusion={"rule": "gated_max", "spatial_gate": 0.78}))
    assert Fusion.from_card(gated) == Fusion("gated_max", spatial_gate=0.78)
    ungated = resolve_pack(temporal_plumbing_pack(tmp_path / "ungated", fusion={"rule": "gated_max"}))
    with pytest.raises(PackError, match="needs a spatial_gate probability.*found None"):
        Fusion.from_card(ungated)
    garbled = resolve_pack(temporal_plumbing_pack(
        tmp_path / "garbled", fusion={"rule": "gated_max", "spatial_gate": "high"}))
    with pytest.raises(PackError, match="found 'high'"):
        Fusion.from_card(garbled)
    odd = resolve_pack(temporal_plumbing_pack(tmp_path / "odd", fusion={"rule": "median"}))
    with pytest.raises(PackError, match="fusion rule 'median'"):
        Fusion.from_card(odd)
