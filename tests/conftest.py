"""Shared fixtures: the shipped images and model, and small synthetic images."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pxcodec import codec, images, weights

IMAGES = Path(__file__).parent / "images"


def load(name: str) -> np.ndarray:
    with Image.open(IMAGES / name) as im:
        return np.asarray(im.convert("RGB")).copy()


@pytest.fixture(scope="session")
def model() -> weights.ModelFile:
    return weights.by_name()


@pytest.fixture(scope="session")
def kodak_crop() -> np.ndarray:
    """A 64×48 (landscape) Kodak crop shipped with the tests."""
    return load("kodim15-64x48.png")


@pytest.fixture(scope="session")
def kodak_portrait() -> np.ndarray:
    return load("kodim04-48x64.png")


@pytest.fixture
def threads():
    """Set torch's CPU threads (which also sets the codec's worker processes) for one test."""
    old = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(old)


def encode(pixels: np.ndarray, model=None, **kwargs) -> codec.Encoded:
    """Encode a uint8 array (grey, RGB or RGBA) through the full codec."""
    return codec.encode(images.from_array(pixels), model, **kwargs)


def decode(data: bytes, **kwargs) -> np.ndarray:
    """Decode to the array ``encode`` took (alpha re-attached)."""
    pic = codec.decode(data, **kwargs)
    return pic.pixels if pic.alpha is None else np.dstack([pic.pixels, pic.alpha])


def reseal(data: bytearray) -> bytes:
    """Recompute the header CRC after an edit, so only the edited field is wrong."""
    size = struct.unpack_from("<I", data, 12)[0]
    struct.pack_into("<I", data, size - 4, zlib.crc32(bytes(data[:size - 4])))
    return bytes(data)
