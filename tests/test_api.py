"""The Python API with numpy arrays and file objects."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import pxcodec

from .conftest import FAST, IMAGES, load

rng = np.random.default_rng(3)


@pytest.mark.parametrize("array", [
    load("kodim15-64x48.png"),
    load("kodim15-64x48.png")[..., 1],
    np.dstack([load("kodim04-48x64.png"), rng.integers(0, 256, (64, 48), dtype=np.uint8)]),
    rng.integers(0, 65536, (13, 17), dtype=np.uint16),
    rng.integers(0, 65536, (5, 9, 3), dtype=np.uint16),
    rng.integers(0, 65536, (9, 5, 4), dtype=np.uint16),
])
def test_arrays_in_and_out(array):
    back = pxcodec.decompress(pxcodec.compress(array, model=FAST), as_array=True)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


@pytest.mark.filterwarnings("error")
def test_a_read_only_array_is_coded_without_a_warning():
    array = np.asarray(Image.open(IMAGES / "kodim15-64x48.png"))
    assert not array.flags.writeable
    assert np.array_equal(pxcodec.decompress(pxcodec.compress(array, model=FAST), as_array=True), array)
    assert not array.flags.writeable


def test_file_objects_in_and_out():
    with open(IMAGES / "kodim15-64x48.png", "rb") as f:
        data = pxcodec.compress(f, model=FAST)
    assert pxcodec.info(io.BytesIO(data)).width == 64
    image = pxcodec.decompress(io.BytesIO(data))
    assert np.array_equal(np.asarray(image), load("kodim15-64x48.png"))


def test_png_bytes_out_are_a_valid_png():
    data = pxcodec.compress(load("kodim04-48x64.png"), model=FAST)
    png = pxcodec.decompress_png(data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), load("kodim04-48x64.png"))


def test_unsupported_arrays_are_clear_errors():
    with pytest.raises(pxcodec.InputError, match="array"):
        pxcodec.compress(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(pxcodec.InputError, match="array"):
        pxcodec.compress(np.zeros((4, 4, 3), dtype=np.int16))


def test_more_effort_is_a_smaller_file_that_decodes_the_same_way(model):
    """Effort 2 fits each tile's offsets on more pixels (a 256×256 photo's tiles have 32,768,
    more than effort 1 samples): a different, shorter file, decoded exactly by the same decoder."""
    from pxcodec import codec, images
    picture = images.read_file(IMAGES / "kodim23-256.png")
    plain, hard = (codec.encode(picture, model, effort=e) for e in (1, 2))
    assert hard.data != plain.data and hard.ideal_bits < plain.ideal_bits
    assert np.array_equal(pxcodec.decompress(hard.data, as_array=True), picture.pixels)


def test_an_unknown_effort_is_an_input_error():
    with pytest.raises(pxcodec.InputError, match="effort"):
        pxcodec.compress(load("kodim15-64x48.png"), effort=7)
