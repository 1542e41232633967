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
from pxcodec.model import PixelCNN

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


def installed(folder: Path, model: PixelCNN, name: str):
    """``model`` exported as the only weights file of ``folder``, which stands in for the weights
    folder while the generator is suspended (decoding finds the model by fingerprint); yields it."""
    weights.save(weights.export(model), folder / f"{name}.npz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weights, "WEIGHTS_DIR", folder)
        yield weights.by_name(name)


def assert_integer_matches_float(model: PixelCNN, crop: np.ndarray) -> None:
    """Export reproduces the QAT model's head parameters on ``crop`` (up to rare multiplier
    roundings: at most one grid step, on under 0.1 % of them)."""
    net = weights.build(weights.export(model))
    x = torch.from_numpy(crop)
    with torch.no_grad():
        ref = model(x.permute(2, 0, 1)[None])[0].permute(1, 2, 0).reshape(-1, net.cfg.params_per_pixel)
    got = net.band_params(x, 0)
    assert (ref.long() != got).float().mean() < 1e-3
    assert (ref.long() - got).abs().max() <= 1


def assert_wavefront_equals_band(net, pixels: torch.Tensor, compiled: bool, gains=None) -> None:
    """Decode ``pixels`` (H, W, 3) step by step through a wavefront (its compiled loops or torch's
    operations), asserting each step's parameters equal the encoder's whole-band ones."""
    h, w = pixels.shape[:2]
    params = net.band_params(pixels, 0, gains).view(h, w, -1)
    wave = net.wavefront(w)
    assert wave.compiled
    wave.compiled = compiled
    k = net.cfg.reach_right + 1
    for t in range((w - 1) + k * (h - 1) + 1):
        ys = np.arange(h)[(t - k * np.arange(h) >= 0) & (t - k * np.arange(h) < w)]
        xs = t - k * ys
        cells = wave.locate(np.zeros(len(ys), dtype=np.int64), ys, xs)
        step_gains = None if gains is None else gains.expand(len(ys), -1).contiguous()
        assert torch.equal(wave.params(cells, step_gains), params[ys, xs])
        wave.put_pixels(cells, pixels[ys, xs].numpy())
