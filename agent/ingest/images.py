"""Still images: size checked from the header before anything is decoded.

A JPEG or PNG header can claim 65535x65535 pixels (12 GB of BGR); decoding first and asking
later is how such a file takes the process down. Pillow reads only the header here; OpenCV
decodes once the size is known to be acceptable.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

# Verity applies its own limit (ingest.max_frame_pixels) to every picture before decoding;
# Pillow's fixed one would only replace that clear message with its own.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """An image that cannot or may not be decoded; `str()` says why, without the path."""


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header; ImageError when it is not an image."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError("not a readable image (unknown format or damaged header)") from None


def read_image(path: Path, max_pixels: int) -> np.ndarray:
    """The image as BGR, refused before decoding when it has more than `max_pixels`."""
    width, height = image_size(path)
    if width * height > max_pixels:
        raise ImageError(
            f"{width}x{height} image is larger than ingest.max_frame_pixels "
            f"({max_pixels:,} pixels): refused before decoding"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a readable image (damaged data)")
    return image
