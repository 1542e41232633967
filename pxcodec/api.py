"""The Python API: ``compress`` an image to .pxc bytes, ``decompress`` them back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import codec, container, images, weights
from .neural import Progress


def _picture(image: Image.Image | np.ndarray | str | Path) -> images.Picture:
    if isinstance(image, (str, Path)):
        return images.read_file(image)
    if isinstance(image, Image.Image):
        return images.from_image(image)
    return images.from_array(image)


def compress(image: Image.Image | np.ndarray | str | Path, *, model: str | None = None,
             device: str = "cpu", progress: Progress | None = None) -> bytes:
    """Losslessly compress an image to .pxc bytes.

    ``image`` is a PIL image (any mode), a uint8 array ((H, W) grey, (H, W, 3) RGB or
    (H, W, 4) RGBA), or the path of an image file (16-bit colour PNGs are kept exactly).

    >>> import numpy as np, pxcodec
    >>> data = pxcodec.compress(np.zeros((4, 5, 3), dtype=np.uint8))
    >>> data[:4]
    b'\\x89PXC'
    """
    chosen = weights.by_name(model) if model else None
    return codec.encode(_picture(image), chosen, device=device, progress=progress).data


def decompress(data: bytes, *, device: str = "cpu", progress: Progress | None = None) -> Image.Image:
    """Decode .pxc bytes to the identical PIL image (mode, palette and metadata included).

    Damaged input raises a ``PxcError``; 16-bit colour, which a PIL image cannot hold, raises
    ``InputError`` (use ``decompress_png``).

    >>> import numpy as np, pxcodec
    >>> pixels = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    >>> np.array_equal(np.asarray(pxcodec.decompress(pxcodec.compress(pixels))), pixels)
    True
    """
    return codec.decode(data, device=device, progress=progress).to_image()


def decompress_png(data: bytes, *, device: str = "cpu", progress: Progress | None = None) -> bytes:
    """Decode .pxc bytes to PNG file bytes holding exactly the original image and metadata."""
    return codec.decode(data, device=device, progress=progress).to_png()


def info(data: bytes) -> container.Header:
    """The verified header of .pxc bytes (dimensions, mode, model fingerprint, streams)."""
    return container.unpack(data)[0]
