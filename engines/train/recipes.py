"""The spatial and temporal training configs, typed: every section and key they may hold.

A config is checked against its schema before any work starts, so a misspelt or mistyped key
stops the run at once with the key's path, instead of being ignored (the face cache's spec
drops keys it does not know) or failing an hour in. The trainers keep reading the YAML's own
mapping after the check, so a config's checkpoint and cache keys do not change; the defaults
of absent keys stay with the code that reads them. Sections with their own dataclass
(`sbi`, `augment`, `fakes`, `clips`) are checked by it, so their keys are listed once.

The deep trainer's config (engines.train.deep.DeepTrainConfig) is typed the same way.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engines.registry import FUSION_RULES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitSection(_Strict):
    val_fraction: float | None = Field(None, gt=0, lt=1, description="Share of real-only groups "
                                       "kept for validation.")
    seed: int | None = None
    train_fakes: dict[str, float] | None = Field(
        None, description="Method family -> share of its fake-only groups trained on.")

    @field_validator("train_fakes")
    @classmethod
    def _shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        bad = {k: v for k, v in (value or {}).items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"shares must lie in [0, 1]: {bad}")
        return value


class CropSection(_Strict):
    """The run-time crop (engines.faces.align.AlignSpec)."""

    size: int | None = Field(None, ge=16, le=1024)
    scale: float | None = Field(None, gt=0)
    center_y: float | None = None


class WindowSection(CropSection):
    frames: int | None = Field(None, ge=2, le=64, description="Crops per temporal window.")


class FaceCacheSection(_Strict):
    """engines.data.cache.CacheSpec, less the crop (taken from `input`)."""

    frames_per_video: int | None = Field(None, ge=1)
    detector_range: Literal["short", "full", "both"] | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    min_interocular: float | None = Field(None, ge=0)
    max_faces_per_frame: int | None = Field(None, ge=1)
    widen: float | None = Field(None, ge=1)
    loose_size: int | None = Field(None, ge=16)
    still_interocular: float | None = Field(None, gt=0)
    still_jpeg_quality: int | None = Field(None, ge=1, le=100)
    watermark_crop: float | None = Field(None, ge=0, lt=1)
    mesh_for_fakes: bool | None = None
    workers: int | None = Field(None, ge=1)


class CnnSection(_Strict):
    """engines.models.cnn.build_model."""

    arch: Literal["verity_cnn"] | None = None
    widths: list[int] | None = Field(None, min_length=1)
    depths: list[int] | None = Field(None, min_length=1)
    stem_stride: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)
    aux_stage: int | None = Field(None, ge=0)
    highpass: bool | None = None
    decoder: int | None = Field(None, ge=0)
    map_stride: int | None = Field(None, ge=1)
    map_logit: bool | None = None
    map_pool_tau: float | None = Field(None, gt=0)


class TemporalNetSection(_Strict):
    """engines.models.temporal.build_temporal_model."""

    arch: Literal["temporal_2p1d"] | None = None
    widths: list[int] | None = Field(None, min_length=4, max_length=4)
    use_diff: bool | None = None
    dropout: float | None = Field(None, ge=0, lt=1)


class _TrainCommon(_Strict):
    epochs: int | None = Field(None, ge=1)
    batch_pairs: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    warmup_epochs: float | None = Field(None, ge=0)
    aux_weight: float | None = Field(None, ge=0)
    file_balance_power: float | None = Field(None, ge=0)
    threads: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0)
    steps_per_epoch: int | None = Field(None, ge=0)
    bf16: bool | None = None


class SpatialTrainKeys(_TrainCommon):
    label_smoothing: float | None = Field(None, ge=0, lt=0.5)
    channels_last: bool | None = None
    fake_share: float | None = Field(None, ge=0, le=1, description="Share of pairs whose fake "
                                     "is a trained real fake instead of a self-blend.")
    fake_colour_match_p: float | None = Field(None, ge=0, le=1)
    fake_partner: Literal["any", "same_kind"] | None = None
    fake_partner_min_interocular: float | None = Field(None, ge=0)


class SpatialStage(SpatialTrainKeys):
    """One stage of `train.stages`: train keys, and whole-section overrides merged key by key."""

    augment: dict[str, Any] | None = None
    sbi: dict[str, Any] | None = None
    model: CnnSection | None = None


class SpatialTrainSection(SpatialTrainKeys):
    stages: list[SpatialStage] | None = None


class TemporalTrainSection(_TrainCommon):
    pass


class SpatialEvalSection(_Strict):
    calibration_fpr: float | None = Field(None, gt=0, lt=1)
    batch: int | None = Field(None, ge=1)


class TemporalEvalSection(_Strict):
    calibration_fpr: float | None = Field(None, gt=0, lt=1)
    windows_per_video: int | None = Field(None, ge=1)


class OODSection(_Strict):
    quantile: float | None = Field(None, gt=0.5, lt=1)


class ExportSection(_Strict):
    opset: int | None = Field(None, ge=13)


class TemporalExportSection(ExportSection):
    flip_average: bool | None = Field(None, description="Logit = mean over the window and its "
                                      "mirror image, in the graph.")


class FusionSection(_Strict):
    rule: str | None = None

    @field_validator("rule")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in FUSION_RULES:
            raise ValueError(f"{value!r} is not one of {', '.join(FUSION_RULES)}")
        return value


def _by_dataclass(value: dict[str, Any] | None, module: str, name: str) -> dict[str, Any] | None:
    """Hand a section to its dataclass's from_dict, which rejects unknown keys."""
    if value is not None:
        import importlib

        getattr(importlib.import_module(module), name).from_dict(value)
    return value


class _Recipe(_Strict):
    name: str
    version: str
    seed: int = 0
    split: SplitSection | None = None
    sbi: dict[str, Any] | None = None
    augment: dict[str, Any] | None = None
    export: ExportSection | None = None

    @field_validator("sbi")
    @classmethod
    def _sbi(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _by_dataclass(value, "engines.synthesis.sbi", "SBIConfig")

    @field_validator("augment")
    @classmethod
    def _augment(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _by_dataclass(value, "engines.train.augment", "AugmentConfig")


class SpatialRecipe(_Recipe):
    """configs/train/spatial-*.yaml (`verity train spatial`)."""

    input: CropSection | None = None
    faces: FaceCacheSection | None = None
    model: CnnSection | None = None
    train: SpatialTrainSection | None = None
    eval: SpatialEvalSection | None = None
    ood: OODSection | None = None

    @field_validator("train")
    @classmethod
    def _stage_sections(cls, value: SpatialTrainSection | None) -> SpatialTrainSection | None:
        for stage in (value.stages or []) if value else []:
            _by_dataclass(stage.sbi, "engines.synthesis.sbi", "SBIConfig")
            _by_dataclass(stage.augment, "engines.train.augment", "AugmentConfig")
        return value


class TemporalRecipe(_Recipe):
    """configs/train/temporal-*.yaml (`verity train temporal`)."""

    ensemble_seeds: list[int] | None = None
    input: WindowSection | None = None
    clips: dict[str, Any] | None = None
    fakes: dict[str, Any] | None = None
    model: TemporalNetSection | None = None
    train: TemporalTrainSection | None = None
    eval: TemporalEvalSection | None = None
    fusion: FusionSection | None = None
    export: TemporalExportSection | None = None

    @field_validator("clips")
    @classmethod
    def _clips(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """engines.data.clips.ClipSpec, less the crop (taken from `input`), plus `workers`."""
        from engines.data.clips import ClipSpec

        known = set(ClipSpec.__dataclass_fields__) - {"crop_scale", "crop_center_y"} | {"workers"}
        unknown = sorted(set(value or {}) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown} (known: {', '.join(sorted(known))})")
        return value

    @field_validator("fakes")
    @classmethod
    def _fakes(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _by_dataclass(value, "engines.train.temporal_data", "WindowFakeConfig")


def check_recipe(cfg: dict, schema: type[_Recipe]) -> None:
    """ValueError naming every bad key (its dotted path) and why."""
    try:
        schema.model_validate(cfg)
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors())) from None
