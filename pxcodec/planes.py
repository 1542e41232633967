"""Lossless coding outside the model: alpha planes, and the whole-image PNG fallback.

Alpha is usually flat or nearly so. A constant plane is stored as its value (2 bytes); any
other plane row by row as differences from the pixel to the left, LZMA2-compressed, so a
mostly opaque 24-megapixel plane costs a few kilobytes. The first byte says which. Images the model does not code (palette, 1-bit, 16-bit) are kept as a PNG file,
which stores them exactly with their palette, transparency and depth.
"""
from __future__ import annotations

import lzma

import numpy as np

from .errors import CorruptError

_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6}]


CONSTANT, DELTA_LZMA = 0, 1


def pack_alpha(alpha: np.ndarray) -> bytes:
    """An (H, W) uint8 plane → bytes."""
    first = int(alpha.flat[0])
    if (alpha == first).all():
        return bytes([CONSTANT, first])
    delta = np.diff(alpha.astype(np.uint8), axis=1, prepend=np.uint8(0))
    return bytes([DELTA_LZMA]) + lzma.compress(delta.tobytes(), format=lzma.FORMAT_RAW, filters=_FILTERS)


def unpack_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of ``pack_alpha``; never inflates past the plane's size."""
    if len(data) == 2 and data[0] == CONSTANT:
        return np.full((height, width), data[1], dtype=np.uint8)
    if not data or data[0] != DELTA_LZMA:
        raise CorruptError("corrupt alpha plane: unknown coding")
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_FILTERS)
    try:
        raw = dec.decompress(data[1:], max_length=height * width + 1)
    except lzma.LZMAError as exc:
        raise CorruptError(f"corrupt alpha plane: {exc}") from exc
    if len(raw) != height * width:
        raise CorruptError("corrupt alpha plane: wrong size")
    delta = np.frombuffer(raw, dtype=np.uint8).reshape(height, width)
    return np.cumsum(delta, axis=1, dtype=np.uint8)
