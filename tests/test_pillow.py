"""The Pillow plugin: ``Image.open`` / ``Image.save`` with .pxc files, Pillow's conventions."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import pxcodec  # noqa: F401  (registers the plugin)

from pxcodec import container

from .conftest import load, reseal


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_save_and_open(tmp_path, mode):
    image = Image.fromarray(load("kodim15-64x48.png")).convert(mode)
    path = tmp_path / "x.pxc"
    image.save(path)                       # format from the extension
    with Image.open(path) as back:
        assert back.format == "PXC" and back.format_description.startswith("pxcodec")
        assert back.size == image.size and back.mode == image.mode
        assert np.array_equal(np.asarray(back), np.asarray(image))
        if mode == "P":
            assert back.getpalette() == image.getpalette()


def test_save_to_file_object_with_format():
    image = Image.fromarray(load("kodim04-48x64.png"))
    buf = io.BytesIO()
    image.save(buf, format="PXC")
    buf.seek(0)
    with Image.open(buf) as back:
        assert np.array_equal(np.asarray(back), np.asarray(image))


def _pxc(image: Image.Image) -> bytearray:
    buf = io.BytesIO()
    image.save(buf, format="PXC")
    return bytearray(buf.getvalue())


def test_damaged_stream_is_not_identified():
    data = _pxc(Image.fromarray(load("kodim15-64x48.png")))
    data[-2] ^= 0x20  # stream CRCs are checked with the header
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(bytes(data)))


def test_open_is_lazy_and_load_raises_oserror():
    data = _pxc(Image.fromarray(load("kodim15-64x48.png")))
    data[container._FIXED.size - 8] ^= 0xFF  # the pixel checksum: only decoding can tell
    with Image.open(io.BytesIO(reseal(data))) as image:
        assert image.size == (64, 48)      # header read, nothing decoded yet
        with pytest.raises(OSError, match="checksum"):
            image.load()


def test_other_formats_are_not_claimed():
    buf = io.BytesIO()
    Image.new("RGB", (3, 3)).save(buf, format="PNG")
    buf.seek(0)
    assert Image.open(buf).format == "PNG"
