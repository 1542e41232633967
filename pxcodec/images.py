"""Images as pxcodec codes them: which pixels go through the model, which planes go beside it.

A ``Picture`` is one of:

* ``RGB`` / ``L`` — 8-bit colour or grey, coded by the model (grey as R with G = B = R);
* ``RGBA`` / ``LA`` — the same plus an alpha plane coded on its own (``planes``);
* ``PNG`` — anything else (palette, 1-bit, 16-bit grey or colour, …) kept exactly as a PNG file.

plus the PNG metadata that must survive (``metadata``). Pillow reads 16-bit colour PNGs as
8-bit, so such files are recognised from their header and kept byte for byte.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import metadata
from .errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Pillow modes coded by the model (the colour part) and whether they carry alpha.
MODEL_MODES = {"RGB": False, "L": False, "RGBA": True, "LA": True}


@dataclass
class Picture:
    """What a .pxc file stores: pixels for the model, an optional alpha plane, or a PNG."""

    mode: str
    width: int
    height: int
    pixels: np.ndarray | None = None   # (H, W, 3) or (H, W) uint8, model modes
    alpha: np.ndarray | None = None    # (H, W) uint8, RGBA and LA
    png: bytes | None = None           # the fallback's PNG file
    meta: dict = field(default_factory=dict)

    def to_image(self) -> Image.Image:
        """The picture as a PIL image, with its metadata in ``info``."""
        if self.png is not None:
            if _is_16bit_colour(self.png):
                raise InputError("16-bit colour cannot be held by a PIL image without losing bits; "
                                 "use decompress_png() or `pxc decompress` for the exact PNG")
            with Image.open(io.BytesIO(self.png)) as im:
                im.load()
                return im.copy() if not self.meta else metadata.apply(im.copy(), self.meta)
        colour = Image.fromarray(self.pixels, "RGB" if self.pixels.ndim == 3 else "L")
        if self.alpha is not None:
            colour.putalpha(Image.fromarray(self.alpha, "L"))
        return metadata.apply(colour, self.meta)

    def to_array(self) -> np.ndarray:
        """The picture as the numpy array ``from_array`` takes (palette images: their indices)."""
        if self.png is None:
            return self.pixels if self.alpha is None else np.dstack([self.pixels, self.alpha])
        if _is_16bit_colour(self.png):
            return _imagecodecs("16-bit colour arrays").png_decode(self.png)
        return np.asarray(self.to_image())

    def to_png(self) -> bytes:
        """The picture as PNG file bytes, exactly (the fallback's own bytes where it has them)."""
        if self.png is not None:
            return self.png
        buf = io.BytesIO()
        self.to_image().save(buf, format="PNG", **metadata.png_save_options(self.meta))
        return buf.getvalue()


def _is_16bit_colour(data: bytes) -> bool:
    """Whether PNG bytes hold 16-bit RGB or RGBA (IHDR bit depth 16, colour type 2 or 6)."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return False
    depth, colour_type = struct.unpack_from(">BB", data, 24)
    return depth == 16 and colour_type in (2, 6)


def from_image(image: Image.Image) -> Picture:
    """A PIL image → Picture; modes the model does not code become a PNG fallback."""
    w, h = image.size
    if w < 1 or h < 1:
        raise InputError("image has no pixels")
    meta = metadata.extract(image)
    if image.mode in MODEL_MODES:
        arr = np.array(image, dtype=np.uint8)
        if not MODEL_MODES[image.mode]:
            return Picture(image.mode, w, h, np.ascontiguousarray(arr), meta=meta)
        colour = arr[..., 0] if image.mode == "LA" else arr[..., :3]
        return Picture(image.mode, w, h, np.ascontiguousarray(colour), np.ascontiguousarray(arr[..., -1]),
                       meta=meta)
    if image.mode == "I" and np.asarray(image).min() >= 0 and np.asarray(image).max() < 65536:
        image = image.convert("I;16")  # PNG stores 16-bit grey; Pillow may open it as I
    buf = io.BytesIO()
    try:
        image.save(buf, format="PNG", optimize=True, **metadata.png_save_options(meta))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"pixel mode {image.mode} cannot be stored losslessly") from exc
    return Picture("PNG", w, h, png=buf.getvalue(), meta=meta)


def _imagecodecs(what: str):
    try:
        import imagecodecs
    except ImportError as exc:
        raise InputError(f"{what} need the optional imagecodecs package (pip install 'pxcodec[full]')") from exc
    return imagecodecs


def from_array(array: np.ndarray) -> Picture:
    """An (H, W), (H, W, 3) or (H, W, 4) uint8 array → Picture (grey, RGB, RGBA); uint16 arrays
    of those shapes → 16-bit grey or colour, kept exactly by the PNG fallback."""
    arr = np.asarray(array)
    if arr.dtype == np.uint16 and arr.size:
        if arr.ndim == 2:
            return from_image(Image.fromarray(np.ascontiguousarray(arr)))  # Pillow: mode I;16
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            png = _imagecodecs("16-bit colour arrays").png_encode(np.ascontiguousarray(arr))
            return Picture("PNG", arr.shape[1], arr.shape[0], png=png)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) uint8 array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError("image has no pixels")
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        return Picture("L", w, h, np.ascontiguousarray(arr))
    if arr.shape[2] == 4:
        return Picture("RGBA", w, h, np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3]))
    return Picture("RGB", w, h, np.ascontiguousarray(arr))


def read_file(path: str | Path) -> Picture:
    """An image file → Picture; unreadable, animated or non-image input raises ``InputError``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    return read_bytes(data, path)


def read_bytes(data: bytes, name: str | Path = "<bytes>") -> Picture:
    """An image file's bytes → Picture (``name`` only labels errors)."""
    path = name
    try:
        with Image.open(io.BytesIO(data)) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise InputError(f"{path}: animated or multi-frame images are not supported")
            im.load()
            if _is_16bit_colour(data):
                return Picture("PNG", im.width, im.height, png=data, meta=metadata.extract(im))
            return from_image(im)
    except UnidentifiedImageError as exc:
        raise InputError(f"{path}: cannot read image (not a format Pillow reads)") from exc
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from exc
