"""Pixel-exact round trips through the Python API, on photographs and synthetic extremes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pxcodec


from .conftest import FAST, decode, encode, load

rng = np.random.default_rng(1234)


def roundtrip(pixels: np.ndarray, model: str | None = FAST) -> np.ndarray:
    """``pixels`` through ``compress`` and ``decompress``; ``model`` None: the default choice."""
    return np.asarray(pxcodec.decompress(pxcodec.compress(pixels, model=model)))


@pytest.mark.parametrize("name", ["kodim15-64x48.png", "kodim04-48x64.png"])
def test_kodak_crops(name):
    pixels = load(name)
    assert np.array_equal(roundtrip(pixels, model=None), pixels)


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (29, 1), (7, 13), (13, 7), (2, 2), (3, 300)])
def test_odd_shapes_random_noise(shape):
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(roundtrip(pixels), pixels)


@pytest.mark.parametrize("value", [(0, 0, 0), (255, 255, 255), (12, 200, 77)])
def test_flat_images(value):
    pixels = np.empty((40, 50, 3), dtype=np.uint8)
    pixels[:] = value
    assert np.array_equal(roundtrip(pixels), pixels)


def test_extreme_values_everywhere():
    pixels = rng.choice(np.array([0, 255], dtype=np.uint8), (16, 24, 3))
    assert np.array_equal(roundtrip(pixels), pixels)


def test_bands_and_streams_cover_tall_images(model):
    """More rows than one stream band, with a band boundary inside a wavefront step."""
    pixels = np.concatenate([load("kodim04-48x64.png")] * 3)[:150, :20]
    enc = encode(pixels, model, stream_rows=32)
    assert np.array_equal(decode(enc.data), pixels)


def test_pil_image_in_pil_image_out(kodak_crop):
    image = Image.fromarray(kodak_crop)
    out = pxcodec.decompress(pxcodec.compress(image, model=FAST))
    assert out.mode == "RGB" and out.size == image.size
    assert np.array_equal(np.asarray(out), kodak_crop)


def test_photograph_beats_png(kodak_crop):
    import io
    buf = io.BytesIO()
    Image.fromarray(kodak_crop).save(buf, format="PNG", optimize=True)
    assert len(pxcodec.compress(kodak_crop)) < buf.tell()


def test_bad_arrays_are_clear_errors():
    with pytest.raises(pxcodec.InputError, match="uint8"):
        pxcodec.compress(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(pxcodec.InputError, match="no pixels"):
        pxcodec.compress(np.zeros((0, 4, 3), dtype=np.uint8))


@pytest.mark.parametrize("shape", [(2, 1500), (400, 3)])
def test_very_wide_and_very_tall(shape):
    pixels = np.repeat(np.repeat(load("kodim15-64x48.png"), 32, axis=1), 9, axis=0)[:shape[0], :shape[1]]
    assert np.array_equal(roundtrip(pixels), pixels)


@pytest.mark.parametrize("cols, channels", [(1, 3), (2, 3), (7, 3), (29, 3), (7, 4), (7, 1)])
def test_tiles_of_any_width(model, threads, cols, channels):
    """Bands of 16 rows cut into tiles of ``cols`` columns (the last one narrower, tiles
    narrower than the wavefront's r + 1 = 3 columns, one tile), in colour, RGBA and grey: the same
    pixels back from one process and from two workers whose shares split a band."""
    crop = load("kodim04-48x64.png")[:37, :29]
    pixels = {3: crop, 4: np.dstack([crop, crop[..., 1]]), 1: crop[..., 0].copy()}[channels]
    data = encode(pixels, model, stream_rows=16, stream_cols=cols, effort=1).data
    header = pxcodec.info(data)
    assert (header.stream_cols, header.tiles) == (cols, 3 * -(-29 // cols))
    threads(1)
    assert np.array_equal(decode(data), pixels)
    threads(2)
    assert np.array_equal(decode(data), pixels)
