"""Backward adaptation (format versions 5, 7 and 10): what the encoder predicts the decoder learns, it
learns."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pxcodec import adapt, mixture, neural, online, weights
from pxcodec.data import halve_chroma
from pxcodec.steps import StepMixture

from .conftest import load, round_trips


def _channels(net, pixels: np.ndarray) -> tuple[list, np.ndarray]:
    """Each channel's (logits, means, log-scales) of an image coded as one stream without
    offsets (``neural.channel_params``: a coupling and a neighbour net included), and its pixels."""
    h, w = pixels.shape[:2]
    rgb = torch.from_numpy(pixels)
    trunk, guess = neural._band_trunk(net, rgb, 0, h, 64, True)
    band = rgb.reshape(-1, 3).to(torch.int32)
    around = neural.band_around(net, trunk, band, guess, w)
    return neural.channel_params(net, net.head_params(trunk), band, adapt.Offsets(), 3, guess, around), band.numpy()


def _learned_bits(net, channels: list, x: np.ndarray, h: int, w: int, version: int) -> float:
    """Ideal bits of an h × w image coded as one stream, each channel's (logits, means, log-scales)
    moved by the offsets its stream of format ``version`` learns."""
    ys, xs = np.divmod(np.arange(h * w), w)
    learned = online.learned(net.mixture, channels, x, h, w, xs + (net.cfg.reach_right + 1) * ys, version)
    total = 0.0
    for c, (logit, mean, logscale) in enumerate(channels):
        moved = net.mixture.shift(mean, logscale, learned[c][:, None], 0)[1]
        total += net.mixture.code_lengths(logit, x[:, c])(mean, moved).sum()
    return total


@pytest.mark.parametrize("version", [6, 7, online.EVERY_STEP_VERSION])
def test_encoder_predicts_the_offsets_the_decoder_learns(model, kodak_crop, version):
    """``online.learned`` (the encoder's vectorised cumulative sums) gives every subpixel the
    offset the decoder's ``StepMixture``, fed step by step in wavefront order, has learned by
    then: each PMF it builds equals the encoder's (``IntegerMixture.channel`` with the same
    forward offsets, then ``pmf`` with the learned one), and some offsets are not zero. With the
    contexts of version 6, with version 7's split by the colour difference, and with version 10
    learning from every step."""
    net = weights.load(model)
    h, w = kodak_crop.shape[:2]
    n, r = h * w, net.cfg.reach_right
    trunk, guess = neural._band_trunk(net, torch.from_numpy(kodak_crop), 0, h, 64, True)
    params = net.head_params(trunk).numpy()
    guess = None if guess is None else guess.numpy()
    x = kodak_crop.reshape(-1, 3).astype(np.int32)
    rng = np.random.default_rng(version)  # forward offsets, one row per pixel: every term of channel()
    delta = np.concatenate([rng.integers(-6, 7, (n, 6)), rng.integers(-20, 21, (n, 3))], 1).astype(np.int32)
    channels = [net.mixture.channel(params, c, x, delta[:, c:c + 1], delta[:, 3 + c:4 + c],
                                    [delta[:, 6 + j:7 + j] for j in range(3)], guess) for c in range(3)]
    ys, xs = np.divmod(np.arange(n), w)
    steps = xs + (r + 1) * ys
    expected = online.learned(net.mixture, channels, x, h, w, steps, version, chunk=100)  # chunks change nothing
    mix = StepMixture(net.mixture, 1, 1, w, 3, h, r, version)
    for t in np.unique(steps):
        idx = np.flatnonzero(steps == t)
        zero = np.zeros(idx.size, dtype=np.int64)
        mix.begin(zero, ys[idx], xs[idx], zero, params[idx], delta[idx], None if guess is None else guess[idx])
        known = np.zeros((idx.size, 3), dtype=np.int32)
        for c, (logit, mean, logscale) in enumerate(channels):
            moved = net.mixture.shift(mean[idx], logscale[idx], expected[c, idx, None], 0)[1]
            assert np.array_equal(mix.pmf(c, known), net.mixture.pmf(logit[idx], mean[idx], moved))
            known[:, c] = x[idx, c]
            mix.see(c, known[:, c])
        mix.end(known)
    assert np.count_nonzero(expected) > expected.size // 4


def test_candidate_costs_are_the_costs_of_the_moved_pmfs(model, kodak_crop):
    """Each candidate's integer cost of a symbol is ``online.cost`` of the mass that the tensor
    path's PMF, every log-scale moved by the candidate, gives the symbol."""
    net = weights.load(model)
    trunk, guess = neural._band_trunk(net, torch.from_numpy(kodak_crop), 0, kodak_crop.shape[0], 64, True)
    x = kodak_crop.reshape(-1, 3).astype(np.int32)
    logit, mean, logscale = net.mixture.channel(net.head_params(trunk).numpy(), 1, x,
                                                predicted=None if guess is None else guess.numpy())
    got = online.candidate_costs(net.mixture, logit, mean, logscale, x[:, 1])
    for j, offset in enumerate(online.CANDIDATES):
        moved = net.mixture.shift(mean, logscale, int(offset), 0)[1]
        pmf = net.mixture.pmf(*(torch.from_numpy(np.ascontiguousarray(v)) for v in (logit, mean, moved))).numpy()
        assert np.array_equal(got[:, j], [online.cost(int(m)) for m in pmf[np.arange(x.shape[0]), x[:, 1]]])


def test_learning_shortens_a_photo_whose_noise_differs_by_region(model, kodak_crop, monkeypatch):
    """Half a photo with heavy noise added: one scale offset per tile cannot suit both halves,
    contexts can. The learning encoder's ideal code is shorter than with learning switched off
    (a single candidate, 0), and its file decodes exactly. The tile's head offsets and gains are
    off: on
    a crop this small (3,072 pixels, a quarter of them learned from) they leave the learner too
    little to win back (pxc-c with them: 1.008); on the held-out photos learning still takes
    0.21 % off with them."""
    monkeypatch.setitem(adapt.EFFORTS, adapt.DEFAULT_EFFORT, adapt.Effort(0, 2.0, 8.0, sample=4096, batch=4096, average=1, search=4096))
    rng = np.random.default_rng(1)
    image = kodak_crop.astype(np.int64)
    image[:, 32:] += rng.integers(-48, 49, image[:, 32:].shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    learning = neural.encode_pixels(image, model)[1]
    monkeypatch.setattr(online, "CANDIDATES", np.zeros(1, dtype=np.int32))
    fixed = neural.encode_pixels(image, model)[1]
    monkeypatch.undo()
    assert learning < 0.995 * fixed  # pxc-c: 0.991, pxc-a: 0.972
    assert round_trips(image, model)


def test_costs_are_minus_log2_in_fixed_point():
    """Integer costs (``mixture.cost``) follow −log2(mass) to within 1/1000 bit (up to the constant the argmin
    ignores), and grow as the mass shrinks."""
    mass = np.array([1, 2, 3, 1000, 12345, 65536, 2**31 - 1, 2**40 + 7], dtype=np.int64)
    costs = np.array([mixture.cost(m) for m in mass])
    exact = -np.log2(mass.astype(np.float64)) * (1 << mixture.COST_BITS)
    offset = costs - exact
    assert np.all(np.abs(offset - offset[0]) < (1 << mixture.COST_BITS) / 1000)
    assert np.all(np.diff(costs) < 0)
    assert mixture._LOG2[0] == math.floor((1 << mixture.COST_BITS) * math.log2(1 + 0.5 / 1024))


def test_learning_needs_a_decoded_north_east_neighbour(model):
    mixture = weights.load(model).mixture
    with pytest.raises(ValueError, match="reach_right"):
        StepMixture(mixture, 1, 1, 8, 3, 8, reach_right=0, version=online.VERSION)
    StepMixture(mixture, 1, 1, 8, 3, 8, reach_right=0, version=online.VERSION - 1)  # older streams do not learn


def test_splitting_by_a_flat_colour_difference_shortens_smooth_colour():
    """Version 7 splits G's and B's contexts by whether G − R (B − G) is flat around the
    subpixel. On a photo whose chroma was halved, as cameras and JPEG store it, pxc-c is too
    cautious about G and B where it is flat, and the split learns that: the ideal code of one
    stream is shorter with version 7's contexts than with version 6's (pxc-c: 0.9964; pxc-f,
    whose blend already follows flat colour differences, 0.9995, so the split is held on pxc-c)."""
    net = weights.load(weights.by_name("pxc-c"))
    image = torch.from_numpy(load("kodim23-256.png")).permute(2, 0, 1)[None]
    smooth = halve_chroma(image)[0].permute(1, 2, 0).contiguous().numpy()
    channels, x = _channels(net, smooth)
    h, w = smooth.shape[:2]
    assert _learned_bits(net, channels, x, h, w, 7) < 0.998 * _learned_bits(net, channels, x, h, w, 6)


def test_learning_from_every_step_shortens_a_photo():
    """Version 10's streams learn from every step of their wavefront, version 9's from every
    fourth: four times the evidence per context, so the learned offsets fit better and one
    stream's ideal code is shorter (pxc-w, kodim23-256: 0.9986)."""
    net = weights.load(weights.by_name("pxc-w"))  # with a coupling and a neighbour net
    image = load("kodim23-256.png")
    h, w = image.shape[:2]
    channels, x = _channels(net, image)
    version = online.EVERY_STEP_VERSION
    assert _learned_bits(net, channels, x, h, w, version) < 0.999 * _learned_bits(net, channels, x, h, w, version - 1)
