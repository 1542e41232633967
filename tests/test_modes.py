"""Contract C5: every PNG mode comes back pixel-exact, with its palette and metadata."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import pxcodec
from pxcodec import images

from .conftest import FAST, load

rng = np.random.default_rng(7)


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)) and \
        a.getpalette() == b.getpalette()


def through_file(tmp_path, data: bytes) -> bytes:
    """PNG bytes → pxc via the file path API → PNG bytes."""
    src = tmp_path / "in.png"
    src.write_bytes(data)
    return pxcodec.decompress_png(pxcodec.compress(src, model=FAST))


def photo_rgba() -> Image.Image:
    rgb = Image.fromarray(load("kodim15-64x48.png"))
    alpha = np.full((48, 64), 255, dtype=np.uint8)
    alpha[10:20, 5:30] = rng.integers(0, 256, (10, 25), dtype=np.uint8)
    rgb.putalpha(Image.fromarray(alpha))
    return rgb


@pytest.mark.parametrize("make", [
    lambda: Image.fromarray(load("kodim15-64x48.png")).convert("L"),
    lambda: Image.fromarray(load("kodim04-48x64.png")).convert("LA"),
    photo_rgba,
    lambda: Image.fromarray(load("kodim15-64x48.png")).convert("P", palette=Image.Palette.ADAPTIVE, colors=37),
    lambda: Image.fromarray(load("kodim15-64x48.png")).convert("1"),
    lambda: Image.fromarray(rng.integers(0, 65536, (9, 11), dtype=np.uint16)),      # I;16
    lambda: Image.new("RGB", (1, 1), (3, 2, 1)),
    lambda: Image.new("L", (1, 300), 17),
])
def test_pil_modes_roundtrip(make):
    image = make()
    out = pxcodec.decompress(pxcodec.compress(image, model=FAST))
    assert same_image(out, image)


def test_grey_is_model_coded_and_small():
    grey = Image.fromarray(load("kodim15-64x48.png")).convert("L")
    data = pxcodec.compress(grey, model=FAST)
    assert pxcodec.info(data).mode == "L"
    assert len(data) < len(png_bytes(grey, optimize=True))


def test_opaque_alpha_costs_almost_nothing():
    rgb = Image.fromarray(load("kodim15-64x48.png"))
    rgba = rgb.copy()
    rgba.putalpha(255)
    assert len(pxcodec.compress(rgba, model=FAST)) - len(pxcodec.compress(rgb, model=FAST)) < 20


def test_palette_transparency_survives(tmp_path):
    image = Image.fromarray(load("kodim15-64x48.png")).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 3
    back = Image.open(io.BytesIO(through_file(tmp_path, png_bytes(image, transparency=3))))
    assert same_image(back, image) and back.info["transparency"] == 3


def _png16(arr: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour_type,channels", [(2, 3), (6, 4)])
def test_16bit_colour_files_are_kept_exactly(tmp_path, colour_type, channels):
    data = _png16(rng.integers(0, 65536, (5, 7, channels), dtype=np.uint16), colour_type)
    pxc = pxcodec.compress(_write(tmp_path, data))
    assert pxcodec.info(pxc).mode == "PNG"
    assert pxcodec.decompress_png(pxc) == data
    with pytest.raises(pxcodec.InputError, match="16-bit colour"):
        pxcodec.decompress(pxc)


def _write(tmp_path, data: bytes):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("colour", ["icc", "srgb"])  # a PNG has an ICC profile or an sRGB intent
def test_metadata_survives(tmp_path, colour):
    image = Image.fromarray(load("kodim15-64x48.png"))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a crop")
    info.add_itxt("Comment", "naïve café")
    info.add(b"gAMA", struct.pack(">I", 45455))
    info.add(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    extra = {"icc_profile": b"\x00\x01fake-icc-profile" * 10} if colour == "icc" else {}
    if colour == "srgb":
        info.add(b"sRGB", b"\x01")
    data = png_bytes(image, pnginfo=info, dpi=(300, 150), **extra)
    original = Image.open(io.BytesIO(data))
    back = Image.open(io.BytesIO(through_file(tmp_path, data)))
    assert np.array_equal(np.asarray(back), np.asarray(image))
    expected = {"icc": "icc_profile", "srgb": "srgb"}[colour]
    for key in ("dpi", "gamma", "chromaticity", expected):
        assert key in original.info and back.info[key] == original.info[key], key
    assert back.text == {"Title": "a crop", "Comment": "naïve café"}


def test_rgb_colour_key_transparency_survives(tmp_path):
    image = Image.fromarray(load("kodim15-64x48.png"))
    back = Image.open(io.BytesIO(through_file(tmp_path, png_bytes(image, transparency=(1, 2, 3)))))
    assert back.info["transparency"] == (1, 2, 3)


def test_animated_png_is_refused(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(pxcodec.InputError, match="animated"):
        images.read_file(path)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"hello world"])
def test_corrupt_or_non_image_input(tmp_path, content):
    with pytest.raises(pxcodec.InputError, match="cannot read image"):
        pxcodec.compress(_write(tmp_path, content))
