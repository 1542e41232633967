"""Pillow plugin: after ``import pxcodec``, ``Image.open("x.pxc")`` and ``image.save("x.pxc")`` work.

Opening reads and verifies the header only (size, mode, metadata); pixels are decoded on
``load()``, as Pillow does for other formats. Saving takes the options ``pxcodec.compress``
does, as keywords (``image.save("x.pxc", model="pxc-f", effort=1)``), as Pillow's WebP plugin
takes ``quality`` and ``method``. Damaged data raises ``OSError`` on load, as
Pillow's own decoders do; a file that is not pxc is left to the other plugins.

>>> import io, pxcodec
>>> from PIL import Image
>>> buf = io.BytesIO()
>>> Image.new("RGB", (8, 4), "teal").save(buf, format="PXC")
>>> with Image.open(buf) as im:
...     print(im.format, im.size, im.mode, im.getpixel((0, 0)))
PXC (8, 4) RGB (0, 128, 128)
"""
from __future__ import annotations

import io
from typing import IO

from PIL import Image, ImageFile

from . import api, codec, container, metadata
from .errors import PxcError

FORMAT = "PXC"


def _accept(prefix: bytes) -> bool:
    return prefix[:len(container.MAGIC)] == container.MAGIC


class PxcImageFile(ImageFile.ImageFile):
    """A .pxc file seen through Pillow."""

    format = FORMAT
    format_description = "pxcodec lossless neural image"

    def _open(self) -> None:
        assert self.fp is not None
        self._data = self.fp.read()
        try:
            header, streams = container.unpack(self._data)
            meta = metadata.unpack(header.metadata)
        except PxcError as exc:
            raise SyntaxError(f"not a valid pxc file: {exc}") from exc
        self._size = (header.width, header.height)
        if header.mode == "PNG":
            with Image.open(io.BytesIO(streams[-1])) as embedded:
                self._mode = embedded.mode
        else:
            self._mode = header.mode
        self.info.update(meta.get("text", {}))
        self.info.update({k: v for k, v in meta.items() if k != "text"})
        self.tile = []

    def load(self):
        if self._im is None:
            try:
                decoded = codec.decode(self._data).to_image()
            except PxcError as exc:
                raise OSError(str(exc)) from exc
            decoded.load()
            self.im = decoded.im
            self._mode = decoded.mode
            if decoded.mode in ("P", "PA"):
                self.palette = decoded.palette.copy()
            self.info.update(decoded.info)
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Write ``im`` as .pxc; the ``model`` and ``effort`` save options are ``pxcodec.compress``'s."""
    options = {k: im.encoderinfo[k] for k in ("model", "effort") if k in im.encoderinfo}
    try:
        fp.write(api.compress(im, **options))
    except PxcError as exc:
        raise OSError(str(exc)) from exc


Image.register_open(FORMAT, PxcImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".pxc")
Image.register_mime(FORMAT, "image/x-pxc")
