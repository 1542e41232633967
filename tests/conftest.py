"""Shared fixtures: the shipped images and model, and small synthetic images."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pxcodec import codec, images, neural, weights
from pxcodec.coupling import INTEGER_MAX
from pxcodec.errors import CertificateError, UnknownModelError
from pxcodec.model import PixelCNN, grown

IMAGES = Path(__file__).parent / "images"
#: The model that tests not about the model choice code with: the fastest of the default choice's.
FAST = weights.DEFAULT_MODEL


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


def round_trips(pixels: np.ndarray, model=None, **kwargs) -> bool:
    """Whether ``pixels`` come back exactly through ``encode`` (with ``kwargs``) and ``decode``."""
    return np.array_equal(decode(encode(pixels, model, **kwargs).data), pixels)


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


def assert_wavefront_equals_band(net, pixels: torch.Tensor, compiled: bool, gains=None, unadapted: bool = False
                                 ) -> None:
    """Decode ``pixels`` (H, W, 3) step by step through a wavefront (its compiled loops or torch's
    operations), asserting each step's parameters equal the encoder's whole-band ones (and, with
    ``unadapted``, that ``params_and_unadapted`` also gives the parameters without the gains)."""
    h, w = pixels.shape[:2]
    params = net.band_params(pixels, 0, gains).view(h, w, -1)
    plain = net.band_params(pixels, 0).view(h, w, -1)
    wave = net.wavefront(w)
    assert wave.compiled
    wave.compiled = compiled
    k = net.cfg.reach_right + 1
    for t in range((w - 1) + k * (h - 1) + 1):
        ys = np.arange(h)[(t - k * np.arange(h) >= 0) & (t - k * np.arange(h) < w)]
        xs = t - k * ys
        cells = wave.locate(np.zeros(len(ys), dtype=np.int64), ys, xs)
        step_gains = None if gains is None else gains.expand(len(ys), -1).contiguous()
        if unadapted:
            got, without = wave.params_and_unadapted(cells, step_gains)
            assert torch.equal(without, plain[ys, xs])
        else:
            got = wave.params(cells, step_gains)
        assert torch.equal(got, params[ys, xs])
        wave.put_pixels(cells, pixels[ys, xs].numpy())


def assert_grown_codes_as_parent(parent: PixelCNN, config, x: torch.Tensor, image: np.ndarray, folder: Path) -> None:
    """A model of ``config`` grown from ``parent`` (``model.grown``) has its parent's training
    loss on crops ``x`` and its exported files' code lengths of ``image``, bit for bit."""
    parent.eval()
    child = PixelCNN(config).eval()
    child.load_state_dict(grown(parent.state_dict(), config))
    with torch.no_grad():
        assert torch.equal(child.nll(x), parent.nll(x))
    for name, m in (("parent", parent), ("child", child)):
        weights.save(weights.export(m), folder / f"{name}.npz")
    files = {m.name: m for m in weights.available(folder)}
    assert np.array_equal(neural.pixel_costs(image, files["child"]), neural.pixel_costs(image, files["parent"]))


def assert_refused(arrays: dict, out_of_range: str, missing: str, part: str) -> None:
    """Weights-file ``arrays`` with one entry of the array ``out_of_range`` past ±INTEGER_MAX are
    refused (``CertificateError``), and without the array ``missing`` too (``UnknownModelError``),
    each error naming the ``part``."""
    arrays[out_of_range] = arrays[out_of_range].copy()
    arrays[out_of_range][0, 0] = INTEGER_MAX + 1
    with pytest.raises(CertificateError, match=part):
        weights.build(arrays)
    del arrays[missing]
    with pytest.raises(UnknownModelError, match=part):
        weights.build(arrays)


def random_head_params(components: int, n: int = 300, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random head parameters (n, P) of a blending model on their grids, with wide enough
    log-scales for the float loss, symbols (n, 3) and classical predictions (n, 3)."""
    rng = np.random.default_rng(seed)
    k3 = 3 * components
    params = np.concatenate([rng.integers(-64, 64, (n, k3)), rng.integers(0, 255 * 16, (n, k3)),
                             rng.integers(16, 64, (n, k3)), rng.integers(-64, 64, (n, k3)),
                             rng.integers(0, 65, (n, k3))], 1).astype(np.int32)
    known = rng.integers(0, 256, (n, 3)).astype(np.int32)
    guess = np.concatenate([rng.integers(0, 256, (n, 1)), rng.integers(-30, 30, (n, 2))], 1).astype(np.int32)
    return params, known, guess


def channels_both_ways(mix, params: np.ndarray, known: np.ndarray, guess: np.ndarray
                       ) -> tuple[list[tuple], list[np.ndarray]]:
    """Every channel's parameters and what it told, channel after channel, asserting that numpy
    and torch give the same integers; returns the numpy ones."""
    as_numpy, as_torch, told_numpy, told_torch = [], [], [], []
    for c in range(3):
        as_numpy.append(mix.channel(params, c, known, predicted=guess, before=told_numpy))
        as_torch.append(mix.channel(torch.from_numpy(params), c, torch.from_numpy(known),
                                    predicted=torch.from_numpy(guess), before=told_torch))
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(as_numpy[c], as_torch[c]))
        told_numpy.append(mix.told(*as_numpy[c], known[:, c]))
        told_torch.append(mix.told(*as_torch[c], torch.from_numpy(known[:, c])))
        assert np.array_equal(told_numpy[c], told_torch[c])
    return as_numpy, told_numpy


def integer_and_float_bits(mix, per_channel: list[tuple], known: np.ndarray, nll: torch.Tensor
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each channel's code lengths (nats) under the integer PMFs and the float loss ``nll``
    (3, n), where the symbol is well above the PMF's floor (which the float loss does not
    have) in that channel and the ones before it, whose outcome moves it."""
    likely = np.ones(len(known), dtype=bool)
    out = []
    for c in range(3):
        pmf = mix.pmf(*per_channel[c]).astype(np.float64)
        p = pmf[np.arange(len(known)), known[:, c]] / pmf.sum(1)
        likely &= p > 1e-3
        assert likely.sum() > 20
        out.append((-np.log(p[likely]), nll[c].numpy()[likely]))
    return out
