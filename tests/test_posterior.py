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

from .conftest import decode, encode, installed

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
    assert np.array_equal(decode(encode(image, posterior_model).data), image)


def test_grey_images_round_trip_with_posterior_weights(posterior_model, kodak_crop):
    grey = kodak_crop[:24, :32, 1].copy()
    assert np.array_equal(decode(encode(grey, posterior_model).data), grey)


def _mixture_params(n: int = 300, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random head parameters (n, P) on their grids, with wide enough log-scales for the float
    loss, symbols (n, 3) and classical predictions (n, 3)."""
    rng = np.random.default_rng(seed)
    k3 = 3 * CONFIG.components
    params = np.concatenate([rng.integers(-64, 64, (n, k3)), rng.integers(0, 255 * 16, (n, k3)),
                             rng.integers(16, 64, (n, k3)), rng.integers(-64, 64, (n, k3)),
                             rng.integers(0, 65, (n, k3))], 1).astype(np.int32)
    known = rng.integers(0, 256, (n, 3)).astype(np.int32)
    guess = np.concatenate([rng.integers(0, 256, (n, 1)), rng.integers(-30, 30, (n, 2))], 1).astype(np.int32)
    return params, known, guess


def test_numpy_torch_and_the_training_loss_agree_on_followed_logits():
    """numpy and torch give the same integers; the posterior moves G's and B's logits, not R's;
    and the training loss scores the integer PMF built from them to about 1 % almost
    everywhere."""
    model = _float_model()
    net = weights.build(weights.export(model))
    mix = net.mixture
    params, known, guess = _mixture_params()
    as_numpy, as_torch, seen_numpy, seen_torch = [], [], [], []
    for c in range(3):
        as_numpy.append(mix.channel(params, c, known, predicted=guess, before=seen_numpy))
        as_torch.append(mix.channel(torch.from_numpy(params), c, torch.from_numpy(known),
                                    predicted=torch.from_numpy(guess), before=seen_torch))
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(as_numpy[c], as_torch[c]))
        seen_numpy.append(mix.told(*as_numpy[c], known[:, c]))
        seen_torch.append(mix.told(*as_torch[c], torch.from_numpy(known[:, c])))
        assert np.array_equal(seen_numpy[c], seen_torch[c])
    k = CONFIG.components
    assert np.array_equal(as_numpy[0][0], params[:, :k])
    for c in (1, 2):
        assert (as_numpy[c][0] != params[:, c * k:(c + 1) * k]).mean() > 0.5
    with torch.no_grad():
        nll = mixture_nll(torch.from_numpy(params).float().T[None, :, :, None],
                          torch.from_numpy(known).to(torch.uint8).T[None, :, :, None], k,
                          torch.from_numpy(guess)[None, :, None], model.posterior_weights())[0, :, :, 0]
    likely = np.ones(len(known), dtype=bool)
    for c in range(3):
        pmf = mix.pmf(*as_numpy[c]).astype(np.float64)
        p = pmf[np.arange(len(known)), known[:, c]] / pmf.sum(1)
        # well above the PMF's floor, which the float loss does not have, in this channel and the
        # ones whose posterior moves its logits
        likely &= p > 1e-3
        assert likely.sum() > 20
        # a posterior a table step apart can floor a logit's move one grid step (1/8) differently
        bits, loss = -np.log(p[likely]), nll[c].numpy()[likely]
        assert np.isclose(bits, loss, rtol=0.01, atol=0.01).mean() > 0.95
        assert np.allclose(bits, loss, rtol=0.03, atol=0.03)


def test_channels_after_the_first_need_the_ones_before():
    net = weights.build(weights.export(_float_model()))
    params, known, guess = _mixture_params(n=10)
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
