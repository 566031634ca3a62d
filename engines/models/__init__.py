"""Torch model definitions (training only: the agent runs the exported ONNX)."""

from engines.models.cnn import CropClassifier, Preprocess, VerityCNN, build_model, count_macs

__all__ = ["CropClassifier", "Preprocess", "VerityCNN", "build_model", "count_macs"]
