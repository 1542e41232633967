"""Models whose G and B mixture weights follow R's (and G's) components' posterior
(``ModelConfig.posterior``): the same logits on every code path, the training loss scoring the
integer PMF, exact round trips, and a model grown to have them coding as before."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pxcodec import neural, weights
from pxcodec.config import ModelConfig
from pxcodec.errors import CertificateError, UnknownModelError
from pxcodec.mixture import POSTERIOR_MAX, mixture_nll
from pxcodec.model import PixelCNN, grown

from .conftest import channels_both_ways, installed, integer_and_float_bits, random_head_params, round_trips

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True, posterior=True)


def _float_model(seed: int = 5) -> PixelCNN:
    """An untrained model whose posterior weights are spread over a few hundred grid units."""
    torch.manual_seed(seed)
    model = PixelCNN(CONFIG).eval()
    with torch.no_grad():
        model.posterior.normal_(0.0, 0.004)
    return model


@pytest.fixture(scope="module")
def posterior_model(tmp_path_factory) -> weights.ModelFile:
    yield from installed(tmp_path_factory.mktemp("weights"), _float_model(), "posterior")


@pytest.mark.parametrize("workers", [1, 2])
def test_posterior_model_round_trips(posterior_model, threads, kodak_crop, workers):
    threads(workers)
    image = kodak_crop[:40, :48]
    assert round_trips(image, posterior_model)


def test_grey_images_round_trip_with_posterior_weights(posterior_model, kodak_crop):
    grey = kodak_crop[:24, :32, 1].copy()
    assert round_trips(grey, posterior_model)


def test_numpy_torch_and_the_training_loss_agree_on_followed_logits():
    """numpy and torch give the same integers; the posterior moves G's and B's logits, not R's;
    and the training loss scores the integer PMF built from them to about 1 % almost
    everywhere."""
    model = _float_model()
    net = weights.build(weights.export(model))
    mix = net.mixture
    params, known, guess = random_head_params(CONFIG.components)
    as_numpy, _ = channels_both_ways(mix, params, known, guess)
    k = CONFIG.components
    assert np.array_equal(as_numpy[0][0], params[:, :k])
    for c in (1, 2):
        assert (as_numpy[c][0] != params[:, c * k:(c + 1) * k]).mean() > 0.5
    with torch.no_grad():
        nll = mixture_nll(torch.from_numpy(params).float().T[None, :, :, None],
                          torch.from_numpy(known).to(torch.uint8).T[None, :, :, None], k,
                          torch.from_numpy(guess)[None, :, None], model.posterior_weights())[0, :, :, 0]
    # a posterior a table step apart can floor a logit's move one grid step (1/8) differently
    for bits, loss in integer_and_float_bits(mix, as_numpy, known, nll):
        assert np.isclose(bits, loss, rtol=0.01, atol=0.01).mean() > 0.95
        assert np.allclose(bits, loss, rtol=0.03, atol=0.03)


def test_channels_after_the_first_need_the_ones_before():
    net = weights.build(weights.export(_float_model()))
    params, known, guess = random_head_params(CONFIG.components, n=10)
    with pytest.raises(ValueError, match="channels before"):
        net.mixture.channel(params, 1, known, predicted=guess)


def test_a_model_grown_to_posterior_weights_codes_as_before(tmp_path, kodak_crop):
    """Posterior weights start at 0, where they move nothing: the grown model gives every
    subpixel the code length its parent did."""
    torch.manual_seed(7)
    parent = PixelCNN(dataclasses.replace(CONFIG, posterior=False)).eval()
    child = PixelCNN(CONFIG).eval()
    child.load_state_dict(grown(parent.state_dict(), CONFIG))
    assert not child.posterior.any()
    for name, m in (("parent", parent), ("child", child)):
        weights.save(weights.export(m), tmp_path / f"{name}.npz")
    files = {m.name: m for m in weights.available(tmp_path)}
    image = kodak_crop[:32, :40]
    assert np.array_equal(neural.pixel_costs(image, files["child"]), neural.pixel_costs(image, files["parent"]))


def test_posterior_weights_out_of_range_or_missing_are_refused():
    arrays = weights.export(_float_model())
    arrays["posterior"] = arrays["posterior"].copy()
    arrays["posterior"][1, 0, 2] = POSTERIOR_MAX + 1
    with pytest.raises(CertificateError, match="posterior"):
        weights.build(arrays)
    del arrays["posterior"]
    with pytest.raises(UnknownModelError, match="posterior"):
        weights.build(arrays)


def test_configs_without_posterior_read_and_write_as_before():
    assert "posterior" not in ModelConfig(blend=True).to_json()
    assert ModelConfig.from_json(CONFIG.to_json()) == CONFIG
