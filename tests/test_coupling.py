"""Models with a coupling net (``ModelConfig.coupling``): a model grown to it trains from, and
codes as, its parent; its features sit on their integer grids; numpy, torch and the training
loss agree on what it moves; files round-trip exactly; weights files without its layers or
with layers out of range are refused."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pxcodec import weights
from pxcodec.config import ModelConfig
from pxcodec.coupling import FEATURE_MAX, GAIN, features_per_channel
from pxcodec.errors import UnknownModelError
from pxcodec.mixture import POSTERIOR_FLOOR, POSTERIOR_UNIT, mixture_nll
from pxcodec.model import PixelCNN

from .conftest import (assert_grown_codes_as_parent, assert_refused, channels_both_ways, installed,
                       integer_and_float_bits, random_head_params, round_trips)

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True, posterior=True, coupling=8)


def _float_model(seed: int = 5) -> PixelCNN:
    """An untrained model whose coupling net moves G's and B's parameters by a few grid steps."""
    torch.manual_seed(seed)
    model = PixelCNN(CONFIG).eval()
    with torch.no_grad():
        model.posterior.normal_(0.0, 0.004)
        for w, b in zip(model.coupling.w2, model.coupling.b1):
            w.normal_(0.0, 0.1 / GAIN)
            b.normal_(0.0, 0.5 / GAIN)
    return model


@pytest.fixture(scope="module")
def coupled_model(tmp_path_factory) -> weights.ModelFile:
    yield from installed(tmp_path_factory.mktemp("weights"), _float_model(), "coupled")


def _crops(seed: int = 3) -> torch.Tensor:
    """Smooth random crops (B, 3, H, W) uint8: a gradient plus noise, so every channel varies."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(40, 200, 12).view(1, 1, 1, 12)
    noise = torch.randint(-12, 13, (2, 3, 10, 12), generator=gen)
    return (ramp + noise).clamp(0, 255).to(torch.uint8)


def test_a_model_grown_to_a_coupling_net_has_its_parents_loss_and_codes(tmp_path, kodak_crop):
    torch.manual_seed(7)
    parent = PixelCNN(dataclasses.replace(CONFIG, coupling=0))
    assert_grown_codes_as_parent(parent, CONFIG, _crops(), kodak_crop[:32, :40], tmp_path)


def test_a_coupling_net_grown_wider_has_its_parents_loss_and_codes(tmp_path, kodak_crop):
    """The new hidden units are read with zero weights: the trained net moves as before."""
    assert_grown_codes_as_parent(_float_model(), dataclasses.replace(CONFIG, coupling=16), _crops(),
                                 kodak_crop[:32, :40], tmp_path)


def test_the_coupling_net_moves_g_and_b_and_learns():
    model = _float_model().train()
    x = _crops()
    with torch.no_grad():
        still = PixelCNN(CONFIG)
        still.load_state_dict({k: v for k, v in model.state_dict().items()})
        for w in still.coupling.w2:
            w.zero_()
        before = still.nll(x)
    after = model.nll(x)
    assert torch.equal(after[:, 0], before[:, 0])
    assert not torch.equal(after[:, 1], before[:, 1]) and not torch.equal(after[:, 2], before[:, 2])
    after.mean().backward()
    for w in (*model.coupling.w1, *model.coupling.w2):
        assert w.grad.abs().sum() > 0


def test_features_are_integers_on_their_grid():
    torch.manual_seed(1)
    k = CONFIG.components
    post = -torch.rand(2, k, 4, 5) * POSTERIOR_FLOOR * POSTERIOR_UNIT
    mean = torch.randint(0, 4096, (2, k, 4, 5)).float()
    logscale = torch.randint(-48, 96, (2, k, 4, 5)).float()
    x = torch.randint(0, 256, (2, 4, 5))
    told = PixelCNN(CONFIG).coupling.told(post, mean, logscale, x)
    assert told.shape == (2, features_per_channel(k), 4, 5)
    assert torch.equal(told, told.round()) and told.abs().max() <= FEATURE_MAX
    assert (told[:, :k] <= 0).all() and torch.equal(told[:, -1], x.float() - 128)


@pytest.mark.parametrize("workers", [1, 2])
def test_coupled_model_round_trips(coupled_model, threads, kodak_crop, workers):
    threads(workers)
    image = kodak_crop[:40, :48]
    assert round_trips(image, coupled_model)


def test_grey_images_round_trip_with_a_coupling_net(coupled_model, kodak_crop):
    grey = kodak_crop[:24, :32, 1].copy()
    assert round_trips(grey, coupled_model)


def test_moves_beyond_the_ranges_are_clamped_alike_by_encoder_and_decoder(tmp_path, kodak_crop):
    """Moves that push log-scales below their range and means above theirs: the encoder clamps
    them before the offsets as the decoder's step does, so the file still round-trips."""
    model = _float_model()
    k = CONFIG.components
    with torch.no_grad():
        for b in model.coupling.b2:
            b[k:2 * k] = 300.0 / GAIN   # means 300 levels up
            b[2 * k:] = -10.0 / GAIN    # log-scales 10 nats down
    image = kodak_crop[:24, :32]
    for file in installed(tmp_path, model, "clamped"):
        assert round_trips(image, file)


def test_numpy_torch_and_the_training_loss_agree_on_the_moves():
    """numpy and torch give the same integers; the net moves G's and B's parameters, not R's;
    and the training loss scores the integer PMF built from them to about 1 % almost
    everywhere."""
    model = _float_model()
    mix = weights.build(weights.export(model)).mixture
    params, known, guess = random_head_params(CONFIG.components)
    as_numpy, told = channels_both_ways(mix, params, known, guess)
    for c in (1, 2):
        moves = mix.coupling.moves(c, told)
        assert (moves != 0).mean() > 0.5
    with torch.no_grad():
        nll = mixture_nll(torch.from_numpy(params).float().T[None, :, :, None],
                          torch.from_numpy(known).to(torch.uint8).T[None, :, :, None], CONFIG.components,
                          torch.from_numpy(guess)[None, :, None], model.posterior_weights(),
                          model.coupling)[0, :, :, 0]
    for bits, loss in integer_and_float_bits(mix, as_numpy, known, nll):
        assert np.isclose(bits, loss, rtol=0.01, atol=0.01).mean() > 0.9


def test_coupling_layers_out_of_range_or_missing_are_refused():
    assert_refused(weights.export(_float_model()), "coupling2.w1", "coupling1.b2", "coupling")


def test_configs_without_coupling_read_and_write_as_before():
    assert "coupling" not in ModelConfig(blend=True, posterior=True).to_json()
    assert ModelConfig.from_json(CONFIG.to_json()) == CONFIG


def test_a_model_with_parts_this_version_lacks_is_refused_by_name():
    newer = CONFIG.to_json()[:-1] + ', "wormholes": 3}'
    with pytest.raises(UnknownModelError, match="wormholes"):
        ModelConfig.from_json(newer)
