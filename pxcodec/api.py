"""The Python API: ``compress`` an image to .pxc bytes, ``decompress`` them back."""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import codec, container, weights
from .images import rgb_pixels


def compress(image: Image.Image | np.ndarray, *, model: str | None = None, device: str = "cpu",
             progress: codec.Progress | None = None) -> bytes:
    """Losslessly compress an 8-bit RGB image (PIL image or (H, W, 3) uint8 array) to .pxc bytes.

    >>> import numpy as np, pxcodec
    >>> data = pxcodec.compress(np.zeros((4, 5, 3), dtype=np.uint8))
    >>> data[:4]
    b'\\x89PXC'
    """
    chosen = weights.by_name(model) if model else weights.by_name()
    return codec.encode_rgb(rgb_pixels(image), chosen, device=device, progress=progress).data


def decompress(data: bytes, *, device: str = "cpu", progress: codec.Progress | None = None) -> Image.Image:
    """Decode .pxc bytes to the identical PIL image; damaged input raises a ``PxcError``.

    >>> import numpy as np, pxcodec
    >>> pixels = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    >>> np.array_equal(np.asarray(pxcodec.decompress(pxcodec.compress(pixels))), pixels)
    True
    """
    return Image.fromarray(codec.decode_rgb(data, device=device, progress=progress), "RGB")


def info(data: bytes) -> container.Header:
    """The verified header of .pxc bytes (dimensions, mode, model fingerprint, streams)."""
    return container.unpack(data)[0]
