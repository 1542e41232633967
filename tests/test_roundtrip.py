"""Pixel-exact round trips through the Python API, on photographs and synthetic extremes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pxcodec
from pxcodec import codec

from .conftest import load

rng = np.random.default_rng(1234)


def roundtrip(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pxcodec.decompress(pxcodec.compress(pixels)))


@pytest.mark.parametrize("name", ["kodim15-64x48.png", "kodim04-48x64.png"])
def test_kodak_crops(name):
    pixels = load(name)
    assert np.array_equal(roundtrip(pixels), pixels)


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (29, 1), (7, 13), (13, 7), (2, 2), (3, 300)])
def test_odd_shapes_random_noise(shape):
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(roundtrip(pixels), pixels)


@pytest.mark.parametrize("value", [(0, 0, 0), (255, 255, 255), (12, 200, 77)])
def test_flat_images_are_exact_and_tiny(value):
    pixels = np.empty((40, 50, 3), dtype=np.uint8)
    pixels[:] = value
    data = pxcodec.compress(pixels)
    assert np.array_equal(roundtrip(pixels), pixels)
    assert len(data) < pixels.size / 8  # under 1 bit per subpixel


def test_extreme_values_everywhere():
    pixels = rng.choice(np.array([0, 255], dtype=np.uint8), (16, 24, 3))
    assert np.array_equal(roundtrip(pixels), pixels)


def test_bands_and_streams_cover_tall_images(model):
    """More rows than one stream band, with a band boundary inside a wavefront step."""
    pixels = np.concatenate([load("kodim04-48x64.png")] * 3)[:150, :20]
    enc = codec.encode_rgb(pixels, model, stream_rows=32)
    assert np.array_equal(codec.decode_rgb(enc.data), pixels)


def test_pil_image_in_pil_image_out(kodak_crop):
    image = Image.fromarray(kodak_crop)
    out = pxcodec.decompress(pxcodec.compress(image))
    assert out.mode == "RGB" and out.size == image.size
    assert np.array_equal(np.asarray(out), kodak_crop)


def test_photograph_beats_png(kodak_crop):
    import io
    buf = io.BytesIO()
    Image.fromarray(kodak_crop).save(buf, format="PNG", optimize=True)
    assert len(pxcodec.compress(kodak_crop)) < buf.tell()


def test_unsupported_mode_is_a_clear_error():
    with pytest.raises(pxcodec.InputError, match="mode L"):
        pxcodec.compress(Image.new("L", (4, 4)))
    with pytest.raises(pxcodec.InputError):
        pxcodec.compress(np.zeros((4, 4), dtype=np.uint8))
