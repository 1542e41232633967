"""The codecs people already use, on the same pixels, for side-by-side figures.

PNG and WebP lossless come from Pillow; JPEG XL (effort 7) and JPEG 2000 lossless from
``imagecodecs`` when that optional extra is installed (``pip install '.[full]'``).
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Codec:
    """A lossless codec: (H, W, 3) uint8 pixels → bytes, and back."""

    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]


def _pillow(**kwargs) -> Codec:
    def encode(pixels: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, **kwargs)
        return buf.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    return Codec(encode, decode)


def codecs(with_optional: bool = True) -> dict[str, Codec]:
    """The reference codecs available here, by name."""
    out = {"PNG": _pillow(format="PNG", optimize=True),
           "WebP": _pillow(format="WEBP", lossless=True, quality=100, method=6)}
    if with_optional:
        try:
            import imagecodecs
        except ImportError:
            return out
        out["JPEG XL e7"] = Codec(lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=7),
                                  imagecodecs.jpegxl_decode)
        out["JPEG 2000"] = Codec(lambda p: imagecodecs.jpeg2k_encode(p, level=0, reversible=True),
                                 imagecodecs.jpeg2k_decode)
    return out
