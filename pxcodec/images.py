"""Reading and writing the images pxcodec codes (Pillow and numpy on the outside)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError


def open_image(path: str | Path) -> Image.Image:
    """Open and fully load an image file; unreadable or non-image input raises ``InputError``."""
    try:
        with Image.open(path) as im:
            im.load()
            if getattr(im, "n_frames", 1) > 1:
                raise InputError(f"{path}: animated or multi-frame images are not supported")
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from exc


def rgb_pixels(image: Image.Image | np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of an 8-bit RGB image or array; other modes raise ``InputError``."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise InputError(f"pixel mode {image.mode} is not supported yet (8-bit RGB only)")
        return np.asarray(image, dtype=np.uint8).copy()
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError("image has no pixels")
    return np.ascontiguousarray(arr)
