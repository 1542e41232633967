"""Sizes of the same pixels under the codecs people already use, for side-by-side figures.

PNG and WebP lossless come from Pillow; JPEG XL and JPEG 2000 lossless from ``imagecodecs``
when that optional extra is installed (``pip install .[bench]``).
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image


def _pillow(**kwargs) -> Callable[[np.ndarray], int]:
    def size(pixels: np.ndarray) -> int:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, **kwargs)
        return buf.tell()
    return size


def codecs(with_optional: bool = True) -> dict[str, Callable[[np.ndarray], int]]:
    """Name → function giving the byte size of (H, W, 3) uint8 pixels in that codec."""
    out = {"PNG": _pillow(format="PNG", optimize=True),
           "WebP": _pillow(format="WEBP", lossless=True, quality=100, method=6)}
    if with_optional:
        try:
            import imagecodecs
        except ImportError:
            return out
        out["JPEG XL e7"] = lambda p: len(imagecodecs.jpegxl_encode(p, lossless=True, effort=7))
        out["JPEG 2000"] = lambda p: len(imagecodecs.jpeg2k_encode(p, level=0, reversible=True))
    return out
