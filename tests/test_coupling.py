"""The coupling net's float side (``ModelConfig.coupling``): a model grown to it trains from
exactly its parent's loss, its features sit on their integer grids, it moves only G and B, and
a model with it is not exported until its integer side exists."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pxcodec import weights
from pxcodec.config import ModelConfig
from pxcodec.coupling import FEATURE_MAX, features_per_channel
from pxcodec.model import PixelCNN, grown

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True, posterior=True, coupling=8)


def _crops(seed: int = 3) -> torch.Tensor:
    """Smooth random crops (B, 3, H, W) uint8: a gradient plus noise, so every channel varies."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(40, 200, 12).view(1, 1, 1, 12)
    noise = torch.randint(-12, 13, (2, 3, 10, 12), generator=gen)
    return (ramp + noise).clamp(0, 255).to(torch.uint8)


def test_a_model_grown_to_a_coupling_net_has_its_parents_loss():
    torch.manual_seed(7)
    parent = PixelCNN(dataclasses.replace(CONFIG, coupling=0)).eval()
    child = PixelCNN(CONFIG).eval()
    child.load_state_dict(grown(parent.state_dict(), CONFIG))
    x = _crops()
    with torch.no_grad():
        assert torch.equal(child.nll(x), parent.nll(x))


def test_the_coupling_net_moves_g_and_b_and_learns():
    torch.manual_seed(7)
    model = PixelCNN(CONFIG)
    x = _crops()
    before = model.nll(x).detach()
    with torch.no_grad():
        for w in model.coupling.w2:
            w.normal_(0.0, 0.01)
    after = model.nll(x)
    assert torch.equal(after[:, 0], before[:, 0])
    assert not torch.equal(after[:, 1], before[:, 1]) and not torch.equal(after[:, 2], before[:, 2])
    after.mean().backward()
    for w in (*model.coupling.w1, *model.coupling.w2):
        assert w.grad.abs().sum() > 0


def test_features_are_integers_on_their_grid():
    torch.manual_seed(1)
    k = CONFIG.components
    logit = torch.randint(-200, 200, (2, k, 4, 5)).float()
    log_p = -torch.rand(2, k, 4, 5) * 30
    mean = torch.randint(0, 4096, (2, k, 4, 5)).float()
    logscale = torch.randint(-48, 96, (2, k, 4, 5)).float()
    x = torch.randint(0, 256, (2, 4, 5))
    told = PixelCNN(CONFIG).coupling.told(logit, log_p, mean, logscale, x)
    assert told.shape == (2, features_per_channel(k), 4, 5)
    assert torch.equal(told, told.round()) and told.abs().max() <= FEATURE_MAX
    assert (told[:, :k] <= 0).all() and torch.equal(told[:, -1], x.float() - 128)


def test_a_coupled_model_is_not_exported_before_its_integer_side_exists():
    with pytest.raises(NotImplementedError, match="coupling"):
        weights.export(PixelCNN(CONFIG))


def test_configs_without_coupling_read_and_write_as_before():
    assert "coupling" not in ModelConfig(blend=True, posterior=True).to_json()
    assert ModelConfig.from_json(CONFIG.to_json()) == CONFIG
