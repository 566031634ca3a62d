"""Training entry points (torch is imported inside them, not here).

- `engines.train.spatial`: the per-frame model trained with self-blended images.
"""
