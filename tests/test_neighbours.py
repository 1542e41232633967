"""Models with a neighbour net (``ModelConfig.neighbours``): a model grown to it trains from, and
codes as, its parent; the integer net computes what the float one does from the same features,
and the encoder's whole-band moves what the training loss sees; the decoder's row cache gives
the encoder's moves, so files round-trip exactly (colour, grey, dependent bands, two workers);
weights files without its layers or with layers out of range are refused."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pxcodec import neighbours, predictor, weights
from pxcodec.config import NEIGHBOUR_SIDES, ModelConfig
from pxcodec.coupling import GAIN
from pxcodec.model import PixelCNN
from pxcodec.neighbours import band_moves, sides_of, unmoved_told
from pxcodec.network import pixel_codes

from .conftest import (assert_grown_codes_as_parent, assert_refused, assert_wavefront_equals_band, installed,
                       random_head_params, round_trips)

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True, posterior=True, coupling=8, neighbours=8)
REACH_2 = dataclasses.replace(CONFIG, neighbour_reach=2)
REACH_3 = dataclasses.replace(CONFIG, neighbour_reach=3)
REACHES = pytest.mark.parametrize("config", [CONFIG, REACH_2, REACH_3], ids=["reach1", "reach2", "reach3"])


def _float_model(seed: int = 5, scale: float = 0.1, config: ModelConfig = CONFIG) -> PixelCNN:
    """An untrained model whose neighbour net moves every channel's parameters by a few grid steps."""
    torch.manual_seed(seed)
    model = PixelCNN(config).eval()
    with torch.no_grad():
        model.neighbours.w2.normal_(0.0, scale / GAIN)
        model.neighbours.b1.normal_(0.0, 0.5 / GAIN)
    return model


@pytest.fixture(scope="module", params=[CONFIG, REACH_2, REACH_3], ids=["reach1", "reach2", "reach3"])
def neighbour_model(tmp_path_factory, request) -> weights.ModelFile:
    yield from installed(tmp_path_factory.mktemp("weights"), _float_model(config=request.param), "neighbours")


def _image(crop: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous()


def test_a_model_grown_to_a_neighbour_net_has_its_parents_loss_and_codes(tmp_path, kodak_crop):
    torch.manual_seed(7)
    parent = PixelCNN(dataclasses.replace(CONFIG, neighbours=0))
    assert_grown_codes_as_parent(parent, CONFIG, _image(kodak_crop[:16, :20]), kodak_crop[:32, :40], tmp_path)


@pytest.mark.parametrize("parent, child", [(CONFIG, REACH_2), (REACH_2, REACH_3),
                                           (REACH_2, dataclasses.replace(REACH_3, neighbours=16))],
                         ids=["1to2", "2to3", "2to3-wider"])
def test_a_neighbour_net_grown_farther_or_wider_has_its_parents_loss_and_codes(tmp_path, kodak_crop, parent,
                                                                                child):
    """The new sides and hidden units are read with zero weights: a trained net moves as before."""
    assert_grown_codes_as_parent(_float_model(config=parent), child, _image(kodak_crop[:16, :20]),
                                 kodak_crop[:32, :40], tmp_path)


def test_the_neighbour_net_moves_every_channel_and_learns(kodak_crop):
    model = _float_model().train()
    x = _image(kodak_crop[:16, :20])
    with torch.no_grad():
        still = PixelCNN(CONFIG)
        still.load_state_dict(model.state_dict())
        still.neighbours.w2.zero_()
        before = still.nll(x)
    after = model.nll(x)
    for c in range(3):
        assert not torch.equal(after[:, c], before[:, c])
    after.mean().backward()
    assert model.neighbours.w1.grad.abs().sum() > 0 and model.neighbours.w2.grad.abs().sum() > 0
    assert model.head_bias.grad.abs().sum() > 0


@REACHES
def test_the_integer_net_computes_what_the_float_net_does(config):
    """From the same told features, the integer net's moves (float64 GEMMs) are the float net's,
    side by side (``neighbours.sides``), zeros outside the band."""
    model = _float_model(scale=0.3, config=config)
    net = weights.build(weights.export(model)).mixture.neighbours
    k = CONFIG.components
    rng = np.random.default_rng(4)
    h, w = 7, 9
    told = np.concatenate([rng.integers(-2048, 1, (h, w, 3, k)), rng.integers(-128, 129, (h, w, 3, k)),
                           rng.integers(-128, 128, (h, w, 3, 1))], 3)
    features = told.copy()
    features[..., :k] >>= 4  # the log-posteriors' 1/16 bits, as coupling.told floors them
    as_float = torch.from_numpy(features).float().permute(2, 3, 0, 1).reshape(1, -1, h, w)
    with torch.no_grad():
        expected = model.neighbours(as_float)[0].permute(3, 4, 0, 1, 2).reshape(h * w, 3, 3, k)
    got = net.moves(sides_of(told, config.neighbour_reach))
    assert np.array_equal(got, expected.long().numpy())
    assert (got != 0).mean() > 0.5
    sides = NEIGHBOUR_SIDES[config.neighbour_reach]
    assert got[0].tolist() == net.moves(np.zeros((1, sides, 3, 2 * k + 1), dtype=np.int64))[0].tolist()


def test_unmoved_told_is_what_each_channel_tells_of_its_conditioned_parameters():
    """The compiled pass over all three channels gives ``told`` of the parameters ``conditioned``
    gives without offsets or moves."""
    mix = weights.build(weights.export(_float_model())).mixture
    k = CONFIG.components
    params, known, guess = random_head_params(k)
    got = mix.unmoved_told(params, known, guess)
    for c in range(3):
        mean, logscale = mix.conditioned(params, c, known, predicted=guess)
        assert np.array_equal(got[:, c], mix.told(params[:, c * k:(c + 1) * k], mean, logscale, known[:, c]))


@REACHES
def test_the_encoder_moves_are_what_the_training_loss_sees(kodak_crop, config):
    """The integer encoder's moves of a band (``band_moves``, from the exported model's
    parameters) equal the float model's almost everywhere (both floor near-equal reals)."""
    model = _float_model(config=config)
    net = weights.build(weights.export(model))
    crop = kodak_crop[:24, :32]
    x = _image(crop)
    with torch.no_grad():
        params = model(x)
        predicted = predictor.image_predictions(pixel_codes(x.permute(0, 2, 3, 1)))
        expected = model.neighbours(unmoved_told(params, x, config.components, predicted))[0]
    h, w = crop.shape[:2]
    pixels = torch.from_numpy(crop)
    band = pixels.reshape(-1, 3).to(torch.int32).numpy()
    guess = net.band_predictions(pixels, 0).numpy()
    got = band_moves(net.mixture, net.band_params(pixels, 0).numpy(), band, guess, w)
    expected = expected.permute(3, 4, 0, 1, 2).reshape(h * w, 3, 3, -1).long().numpy()
    assert (got != 0).mean() > 0.5
    assert (got == expected).mean() > 0.97


@REACHES
def test_band_moves_are_the_same_gathered_in_row_chunks(kodak_crop, config, monkeypatch):
    """``band_moves`` gathers its neighbours a few rows at a time to bound the encoder's memory:
    every chunk reads the rows above it, so the moves equal one gather over the whole band."""
    net = weights.build(weights.export(_float_model(config=config)))
    crop = kodak_crop[:23, :32]
    pixels = torch.from_numpy(crop)
    args = (net.mixture, net.band_params(pixels, 0).numpy(), pixels.reshape(-1, 3).to(torch.int32).numpy(),
            net.band_predictions(pixels, 0).numpy(), crop.shape[1])
    monkeypatch.setattr(neighbours, "MOVE_ROWS", len(crop))
    whole = band_moves(*args)
    monkeypatch.setattr(neighbours, "MOVE_ROWS", 4)
    assert (whole != 0).mean() > 0.5
    assert np.array_equal(band_moves(*args), whole)


def test_the_decoders_parameters_without_gains_are_the_networks(neighbour_model, kodak_crop):
    """``params_and_unadapted`` gives, step by step and on both of its paths, the encoder's
    parameters with the gains and without them."""
    net = weights.load(neighbour_model)
    gains = torch.from_numpy(np.random.default_rng(1).integers(-8, 8, net.cfg.channels)).float()
    for compiled in (True, False):
        assert_wavefront_equals_band(net, torch.from_numpy(kodak_crop[:10, :12].copy()), compiled, gains,
                                     unadapted=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_neighbour_model_round_trips(neighbour_model, threads, kodak_crop, workers):
    threads(workers)
    assert round_trips(kodak_crop[:40, :48], neighbour_model)


def test_neighbour_model_round_trips_grey_and_dependent_bands(neighbour_model, kodak_crop):
    """Grey pixels (three equal channels told), and several streams' rows in one lane (a stream
    sees zeros above its first row) or tiles of several widths side by side."""
    assert round_trips(kodak_crop[:24, :32, 1].copy(), neighbour_model)
    assert round_trips(kodak_crop[:40, :24], neighbour_model, independent=False, stream_rows=16)
    assert round_trips(kodak_crop[:40, :30], neighbour_model, stream_rows=16, stream_cols=11)


def test_moves_beyond_the_ranges_are_clamped_alike_by_encoder_and_decoder(tmp_path, kodak_crop):
    model = _float_model()
    k = CONFIG.components
    with torch.no_grad():
        b2 = model.neighbours.b2.view(3, 3, k)
        b2[:, 1] = 300.0 / GAIN   # means 300 levels up
        b2[:, 2] = -10.0 / GAIN   # log-scales 10 nats down
    for file in installed(tmp_path, model, "clamped"):
        assert round_trips(kodak_crop[:24, :32], file)


def test_neighbour_layers_out_of_range_or_missing_are_refused():
    assert_refused(weights.export(_float_model()), "neighbours.w2", "neighbours.b1", "neighbour")


def test_configs_without_neighbours_read_and_write_as_before():
    assert "neighbour" not in dataclasses.replace(CONFIG, neighbours=0).to_json()
    assert "neighbour_reach" not in CONFIG.to_json()
    for config in (CONFIG, REACH_2, REACH_3):
        assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="neighbours"):
        ModelConfig(neighbours=-1)
    with pytest.raises(ValueError, match="neighbour_reach"):
        ModelConfig(neighbours=8, neighbour_reach=4)


def test_reach_3_needs_a_first_layer_that_reads_two_columns_right():
    """NEE is decoded before the pixel only where the wavefront lags each row by three columns."""
    assert dataclasses.replace(REACH_2, first_kernel=3).reach_right == 1
    with pytest.raises(ValueError, match="NEE"):
        dataclasses.replace(REACH_3, first_kernel=3)
