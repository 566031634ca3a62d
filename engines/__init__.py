"""Verity's neural-network side: face detectors, deepfake models, runtimes, training, evaluation.

Nothing here imports `agent`. Run-time modules (faces, runtime, registry) never import torch;
training modules (`engines.train`, `engines.models`, `engines.data.torch_*`) do.
"""
