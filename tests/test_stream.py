"""Models whose residual stream has an 8-bit grid (``ModelConfig.stream_max`` 255): the same
parameters on every code path, exact round trips, the float model reproduced, and growing a
7-bit model into one."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from pxcodec import weights
from pxcodec.config import ModelConfig
from pxcodec.errors import CertificateError
from pxcodec.intops import Gemm
from pxcodec.model import PixelCNN, grown
from pxcodec.network import IntegerPixelCNN

from .conftest import assert_integer_matches_float, assert_wavefront_equals_band, decode, encode, installed, load

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True, stream_max=255)


def _float_model() -> PixelCNN:
    """An untrained model whose stream uses the whole 8-bit grid: its scale set so that the
    first layer's outputs reach far past 127."""
    torch.manual_seed(5)
    model = PixelCNN(CONFIG).eval()
    with torch.no_grad():
        model.log_scale_h.fill_(math.log(1 / 160))
    return model


@pytest.fixture(scope="module")
def fine_model(tmp_path_factory) -> weights.ModelFile:
    """``_float_model`` exported, alone in a weights folder of its own (decoding finds it by
    fingerprint)."""
    yield from installed(tmp_path_factory.mktemp("weights"), _float_model(), "fine")


def test_the_stream_uses_its_whole_grid(fine_model, kodak_crop):
    """The test model's features do go beyond 7 bits (else the tests below prove nothing)."""
    net = weights.load(fine_model)
    features = net.band_trunk(torch.from_numpy(kodak_crop), 0).features
    assert features.dtype == torch.uint8 and int(features.max()) > 200


@pytest.mark.parametrize("compiled", [True, False])
def test_band_params_equal_wavefront_params(fine_model, kodak_crop, compiled):
    """The encoder's whole-band parameters equal the decoder's per-step ones, whichever way a
    step runs (the CPU's compiled loops, or torch's operations), gains or none."""
    net = weights.load(fine_model)
    pixels = torch.from_numpy(kodak_crop[:20, :24].copy())
    gains = (torch.arange(net.cfg.channels) * 7 % 128 - 64).float()
    for g in (None, gains):
        assert_wavefront_equals_band(net, pixels, compiled, g)


def test_round_trips_from_one_process_and_from_two(fine_model, threads):
    pixels = load("kodim04-48x64.png")[:37, :29]
    data = encode(pixels, fine_model, stream_rows=16, stream_cols=11).data
    for n in (1, 2):
        threads(n)
        assert np.array_equal(decode(data), pixels)


def test_the_kernels_give_the_same_integers_on_an_8_bit_stream(fine_model, kodak_crop):
    """Stream values up to 255 are unsigned bytes: the int8 kernel multiplies them less 128 and
    adds 128 · ΣW back; its parameters, files and decodes (compiled steps, whichever kernel) are
    float32's."""
    nets = {k: weights.load(fine_model, kernel=k) for k in ("int8", "float32")}
    assert nets["int8"].gemms["conv0"].in_shift == 128 and nets["float32"].gemms["conv0"].in_shift == 0
    pixels = torch.from_numpy(kodak_crop[:24, :32].copy())
    assert torch.equal(nets["int8"].band_params(pixels, 0), nets["float32"].band_params(pixels, 0))
    data = encode(kodak_crop[:24, :32], fine_model, kernel="float32").data
    assert encode(kodak_crop[:24, :32], fine_model, kernel="int8").data == data
    for kernel in ("int8", "float32"):
        assert np.array_equal(decode(data, kernel=kernel), kodak_crop[:24, :32])


def test_the_int8_kernel_refuses_inputs_beyond_a_byte(fine_model):
    """Unsigned inputs past 255, or signed ones past ±128, are not int8 (``auto`` takes float32)."""
    conv = weights.load(fine_model).gemms["conv0"].layer
    for layer in (dataclasses.replace(conv, in_max=256), dataclasses.replace(conv, unsigned=False)):
        with pytest.raises(CertificateError, match="not int8"):
            Gemm(layer, "int8")
        assert IntegerPixelCNN._choose(layer, "auto", torch.device("cpu")) == "float32"


def test_integer_model_matches_the_float_model(kodak_crop):
    assert_integer_matches_float(_float_model(), kodak_crop)


def test_a_coarse_model_grown_finer_keeps_its_range(kodak_crop):
    """Growing a 7-bit model into an 8-bit one halves the stream's scale: the same range, every
    old grid point still on the grid, so the bits barely move; older configs keep their JSON
    (their weights files, and so their fingerprints, are unchanged)."""
    torch.manual_seed(0)
    coarse = PixelCNN(ModelConfig(channels=8, blocks=2, components=2)).eval()
    fine = PixelCNN(ModelConfig(channels=8, blocks=2, components=2, stream_max=255)).eval()
    fine.load_state_dict(grown(coarse.state_dict(), fine.cfg, coarse.cfg.stream_max))
    assert torch.allclose(fine.log_scale_h, coarse.log_scale_h - math.log(2))
    x = torch.from_numpy(kodak_crop).permute(2, 0, 1)[None]
    with torch.no_grad():
        before, after = coarse.nll(x).mean(), fine.nll(x).mean()
    assert before != after and abs(float(after / before) - 1) < 0.02
    assert "stream_max" not in json.loads(coarse.cfg.to_json())
    assert ModelConfig.from_json(fine.cfg.to_json()) == fine.cfg
    with pytest.raises(ValueError, match="stream_max"):
        ModelConfig(stream_max=200)
