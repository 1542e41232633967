"""Models whose blocks widen inside (``ModelConfig.hidden``): the same parameters on every code
path, an exact round trip, the float model reproduced, and growing a model's blocks wider."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pxcodec import weights
from pxcodec.config import ModelConfig
from pxcodec.model import PixelCNN, grown

from .conftest import assert_integer_matches_float, assert_wavefront_equals_band, installed, load, round_trips

CONFIG = ModelConfig(channels=8, blocks=2, components=2, blend=True, stream_max=255, hidden=20)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> weights.ModelFile:
    """An untrained wide-block model exported, alone in a weights folder of its own."""
    torch.manual_seed(3)
    yield from installed(tmp_path_factory.mktemp("weights"), PixelCNN(CONFIG).eval(), "wide")


def test_the_config_names_the_width_once():
    """``hidden`` equal to the trunk's width is the plain architecture (one JSON, one
    fingerprint for it); a wider one survives the weights file's JSON and costs its MACs."""
    assert ModelConfig(channels=8, hidden=8) == ModelConfig(channels=8)
    assert "hidden" not in json.loads(ModelConfig(channels=8, hidden=8).to_json())
    assert ModelConfig.from_json(CONFIG.to_json()) == CONFIG
    plain = ModelConfig(channels=8, blocks=2, components=2, blend=True, stream_max=255)
    assert CONFIG.macs_per_pixel - plain.macs_per_pixel == 2 * 6 * 8 * (20 - 8)
    with pytest.raises(ValueError, match="hidden"):
        ModelConfig(hidden=0)


def test_the_layers_have_the_inner_width(wide_model):
    net = weights.load(wide_model)
    assert net.gemms["conv0"].layer.weight.shape == (5 * 8, 20)
    assert net.gemms["mix1"].layer.weight.shape == (20, 8)


@pytest.mark.parametrize("compiled", [True, False])
def test_band_params_equal_wavefront_params(wide_model, kodak_crop, compiled):
    """The encoder's whole-band parameters equal the decoder's per-step ones."""
    assert_wavefront_equals_band(weights.load(wide_model), torch.from_numpy(kodak_crop[:12, :16].copy()), compiled)


def test_round_trips(wide_model):
    pixels = load("kodim04-48x64.png")[:21, :30]
    assert round_trips(pixels, wide_model, stream_rows=16, stream_cols=11)


def test_integer_model_matches_the_float_model(kodak_crop):
    torch.manual_seed(3)
    assert_integer_matches_float(PixelCNN(CONFIG).eval(), kodak_crop)


def test_blocks_grown_wider_compute_what_the_narrow_ones_did(kodak_crop):
    """Widening keeps the model's function (the new inner channels are computed, but read with
    zero weights) and leaves them something to learn from: they are not all zero."""
    torch.manual_seed(0)
    narrow = PixelCNN(ModelConfig(channels=8, blocks=2, components=2)).eval()
    wide = PixelCNN(ModelConfig(channels=8, blocks=3, components=2, hidden=12)).eval()
    wide.load_state_dict(grown(narrow.state_dict(), wide.cfg))
    x = torch.from_numpy(kodak_crop).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert torch.equal(wide(x), narrow(x))
    assert torch.equal(wide.convs[0].weight[:8], narrow.convs[0].weight)
    assert wide.convs[0].weight[8:].abs().sum() > 0 and not wide.mixes[0].weight[:, 8:].any()
    with pytest.raises(ValueError, match="shape"):
        grown(wide.state_dict(), ModelConfig(channels=8, blocks=3, components=2))
