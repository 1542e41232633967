"""The Python API: ``compress`` an image to .pxc bytes, ``decompress`` them back."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image

from . import codec, container, images, weights
from .adapt import DEFAULT_EFFORT
from .neural import Progress


Source = Union[Image.Image, np.ndarray, str, Path, BinaryIO]


def _picture(image: Source) -> images.Picture:
    if isinstance(image, (str, Path)):
        return images.read_file(image)
    if isinstance(image, Image.Image):
        return images.from_image(image)
    if hasattr(image, "read"):
        return images.read_bytes(image.read(), getattr(image, "name", "<stream>"))
    return images.from_array(image)


def _bytes(data: bytes | bytearray | memoryview | BinaryIO) -> bytes:
    return data.read() if hasattr(data, "read") else bytes(data)


def compress(image: Source, *, model: str | None = None, effort: int = DEFAULT_EFFORT, device: str = "cpu",
             progress: Progress | None = None) -> bytes:
    """Losslessly compress an image to .pxc bytes.

    ``image`` is a PIL image (any mode); a numpy array: (H, W) uint8 or uint16 grey,
    (H, W, 3) uint8 RGB, (H, W, 4) uint8 RGBA; the path of an image file; or a binary file
    object holding one (16-bit colour PNG files are kept exactly). ``model`` names a shipped
    model; by default each image gets whichever of ``weights.DEFAULT_MODELS`` codes a sample of
    it in fewer bits (``neural.choose_model``). ``device="cuda"`` runs the
    network on a GPU: the bytes are the same. ``effort`` 1 (``adapt.EFFORTS``) encodes faster
    for files about 0.5–1 % larger; decoding is the same. A level there is none
    of raises ``InputError``.

    >>> import numpy as np, pxcodec
    >>> data = pxcodec.compress(np.zeros((4, 5, 3), dtype=np.uint8))
    >>> data[:4]
    b'\\x89PXC'
    """
    chosen = weights.by_name(model) if model else None
    return codec.encode(_picture(image), chosen, device=device, effort=effort, progress=progress).data


def decompress(data: bytes | BinaryIO, *, as_array: bool = False, device: str = "cpu",
               progress: Progress | None = None) -> Image.Image | np.ndarray:
    """Decode .pxc bytes (or a binary file object) to the identical image.

    Returns a PIL image (mode, palette and metadata in ``info``), or with ``as_array=True`` a
    numpy array shaped as ``compress`` takes it (palette images give their indices). Damaged
    input raises a ``PxcError``; 16-bit colour, which neither can hold here, raises
    ``InputError`` (use ``decompress_png``).

    >>> import numpy as np, pxcodec
    >>> pixels = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    >>> np.array_equal(np.asarray(pxcodec.decompress(pxcodec.compress(pixels))), pixels)
    True
    """
    picture = codec.decode(_bytes(data), device=device, progress=progress)
    return picture.to_array() if as_array else picture.to_image()


def decompress_png(data: bytes | BinaryIO, *, device: str = "cpu", progress: Progress | None = None) -> bytes:
    """Decode .pxc bytes to PNG file bytes holding exactly the original image and metadata."""
    return codec.decode(_bytes(data), device=device, progress=progress).to_png()


def info(data: bytes | BinaryIO) -> container.Header:
    """The verified header of .pxc bytes (dimensions, mode, model fingerprint, streams)."""
    return container.unpack(_bytes(data))[0]
