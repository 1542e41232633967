"""The Pillow plugin: ``Image.open`` / ``Image.save`` with .pxc files, Pillow's conventions."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import pxcodec  # registers the plugin

from pxcodec import container

from .conftest import FAST, load, reseal


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_save_and_open(tmp_path, mode):
    image = Image.fromarray(load("kodim15-64x48.png")).convert(mode)
    path = tmp_path / "x.pxc"
    image.save(path, model=FAST)           # format from the extension
    with Image.open(path) as back:
        assert back.format == "PXC" and back.format_description.startswith("pxcodec")
        assert back.size == image.size and back.mode == image.mode
        assert np.array_equal(np.asarray(back), np.asarray(image))
        if mode == "P":
            assert back.getpalette() == image.getpalette()


def test_save_to_file_object_with_format():
    image = Image.fromarray(load("kodim04-48x64.png"))
    buf = io.BytesIO()
    image.save(buf, format="PXC", model=FAST)
    buf.seek(0)
    with Image.open(buf) as back:
        assert np.array_equal(np.asarray(back), np.asarray(image))


def _pxc(image: Image.Image, **options) -> bytearray:
    buf = io.BytesIO()
    image.save(buf, format="PXC", **{"model": FAST, **options})
    return bytearray(buf.getvalue())


def test_save_options_are_compress_options(model):
    image = Image.fromarray(load("kodim04-48x64.png"))
    fast, hard = (bytes(_pxc(image, effort=e)) for e in (1, 2))
    assert fast != hard
    assert pxcodec.info(fast).fingerprint == pxcodec.info(hard).fingerprint == model.fingerprint
    with pytest.raises(OSError, match="no-such-model"):
        _pxc(image, model="no-such-model")
    with pytest.raises(OSError, match="effort"):
        _pxc(image, effort=9)


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
