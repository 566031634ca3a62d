"""Training and validation data: the face-media manifest, the group split, the face-crop cache.

`engines.manifest` is light (csv + numpy); `engines.data.cache` imports the face detector
and mesh (mediapipe) and PyAV when it runs. Neither imports torch.
"""

from engines.manifest import (
    ManifestEntry,
    Split,
    method_family,
    normalize_group,
    read_manifest,
    split_by_group,
)

__all__ = [
    "ManifestEntry",
    "Split",
    "method_family",
    "normalize_group",
    "read_manifest",
    "split_by_group",
]
