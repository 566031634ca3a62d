"""Which deepfake models score the faces, and on which runtime."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ModelsConfig(BaseModel):
    """Deepfake models (model packs) and inference runtime."""

    model_config = ConfigDict(extra="forbid")

    spatial: str = Field(
        "spatial-sbi",
        description="Per-frame model: a shipped pack name (engines/packs/<name>) or a path to a "
        "pack folder.",
    )
    temporal: str | None = Field(
        None,
        description="Frame-sequence model pack (name or folder, e.g. temporal-sbi), fused with "
        "the spatial one by its card's rule; null (default): none, the deep model decides (its "
        "threshold was calibrated without it; deep_rule max would let it raise the score). Its "
        "fusion and alert threshold hold for the spatial pack they were fitted with: another "
        "spatial pack needs a refit.",
    )

    stills: str | None = Field(
        None,
        description="Model pack (name or folder, role spatial) that judges still images "
        "(photos, `verity score photo.jpg`, image files in `verity eval`), at its own card's "
        "threshold; null: the deep model (else the spatial one) judges them. Video frames never "
        "use it.",
    )

    deep: str | None = Field(
        "deep-clip",
        description="Deep-look model pack (name or folder, role deep): a head on a pretrained "
        "backbone installed from PyPI (its card names the package and hash). It judges each "
        "track every deep_every_s, more often while the track's score rises, and decides the "
        "track's score by deep_rule; it also judges stills unless `stills` names a pack. null: "
        "the spatial (and temporal) models decide alone.",
    )
    deep_rule: Literal["fused", "deep", "gated_max", "max"] = Field(
        "fused",
        description="fused: the deep card's joint decision with the spatial model (its "
        "spatial_fusion: the mean logit of the track's last looks and the mean spatial logit "
        "of its last seconds, weighted, calibrated; needs the spatial pack it was fitted with), "
        "raised to the frame's spatial probability where that reaches spatial_gate; "
        "deep: a frame's probability is its track's deep score (the other models "
        "still run and are reported); gated_max: raised to the spatial model's probability "
        "where that reaches the spatial card's own threshold; max: the larger of the deep score "
        "and the spatial/temporal fusion. The deep card's alert threshold was calibrated with "
        "one rule (verity calibrate records it): change it and recalibrate.",
    )
    spatial_gate: float | None = Field(
        0.86, gt=0, le=1,
        description="Under deep_rule fused and gated_max: the spatial probability at which the spatial "
        "model raises a frame's score (it alarms on blending boundaries). 0.86 sits above every "
        "real face's score measured (highest 0.853 on one frame, 0.80 held for half a second, "
        "over 141 real tracks; its card's own threshold, 0.78, let a real face through and "
        "raised the alert threshold: README, Models). null: the spatial card's threshold.",
    )
    deep_every_s: float = Field(
        1.0, ge=0, le=3600,
        description="Stream seconds between deep looks at one track (0: every analysed frame, "
        "for GPU hosts). A new track gets its first look at once.",
    )
    deep_rising_every_s: float = Field(
        0.3, ge=0, le=3600,
        description="The same while the track's rolling score is at or above deep_escalate_at.",
    )
    deep_escalate_at: float = Field(
        0.6, ge=0, le=1, description="Rolling score from which deep looks come faster."
    )
    deep_cpu_share: float | None = Field(
        0.25, gt=0, le=1,
        description="Most of the machine's CPU time the deep looks may take (0.25: a quarter of "
        "the cores). When more looks fall due than fit, new tracks go first, then tracks whose "
        "score is rising, then the track looked at longest ago; the rest keep their last deep "
        "score a little longer. Many streams thus lower each track's look rate instead of "
        "starving the always-on path. null: no limit (a GPU host).",
    )
    deep_window: int = Field(
        5, ge=1, le=100,
        description="A track's deep score is the calibrated mean logit of its last this many "
        "looks (1: the latest look alone).",
    )

    spatial_every: int = Field(
        2, ge=1, le=30,
        description="Judge a track's face with the spatial model on every this many analysed "
        "frames; the frames between carry its last judgement (probability and out-of-"
        "distribution verdict). A new track, and a track whose rolling score is at or above "
        "deep_escalate_at, is judged on every frame. 2 (default): the same alert threshold and "
        "left-out figures as 1 at ~12% more analysed frames (README, Throughput). The alert "
        "threshold was calibrated with one value (verity calibrate records it): change it and "
        "recalibrate.",
    )
    temporal_mode: Literal["continuous", "escalation"] = Field(
        "continuous",
        description="continuous: the temporal model judges every track; escalation: only tracks "
        "whose rolling score reached temporal_escalate_at (saves CPU, but a fake the spatial "
        "model scores low never reaches the temporal model: see README, Models).",
    )
    temporal_stride: int = Field(
        4, ge=1, le=100, description="Run the temporal model on a track every this many frames."
    )
    temporal_escalate_at: float = Field(
        0.3, ge=0, le=1, description="Rolling score that escalates a track to the temporal model."
    )
    ood_check: bool = Field(
        True,
        description="Faces unlike the spatial model's training faces (its pack's out-of-"
        "distribution check) get the verdict unknown (reason out_of_distribution).",
    )
    runtime: Literal["auto", "onnxruntime", "tensorrt"] = Field(
        "auto",
        description="auto: TensorRT FP16 when tensorrt and a GPU are present, else ONNX Runtime.",
    )
    threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime intra-op threads (0: one per core, max 4)."
    )
    max_batch: int = Field(
        32, ge=1, le=1024, description="Most face crops per inference call, across streams."
    )
    engine_cache_dir: str = Field(
        "~/.cache/verity/engines",
        description="Where built TensorRT engines are kept, keyed by model, TensorRT and GPU.",
    )

    def deep_settings(self) -> dict:
        """The deep look's settings an alert threshold is calibrated for (rule and sampling)."""
        return {k: getattr(self, k) for k in ("deep_rule", "spatial_gate", "deep_every_s",
                                              "deep_rising_every_s", "deep_escalate_at",
                                              "deep_window", "spatial_every")}

    @field_validator("temporal", "stills", "deep", mode="before")
    @classmethod
    def _none_spelled_out(cls, value):
        # From the environment (VERITY_MODELS__TEMPORAL=none) null can only come as a word.
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "off"):
            return None
        return value
