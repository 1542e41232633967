"""Models that blend their means towards a classical prediction (``ModelConfig.blend``): the
same predictions and parameters on every code path, exact round trips, and the blend's effect."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pxcodec import neural, predictor, weights
from pxcodec.config import ModelConfig
from pxcodec.mixture import RANGE, mixture_nll
from pxcodec.model import PixelCNN

from .conftest import decode, encode, installed, load

CONFIG = ModelConfig(channels=16, blocks=2, components=3, blend=True)


@pytest.fixture(scope="module")
def blend_model(tmp_path_factory) -> weights.ModelFile:
    """An untrained blend model (random weights: its blends are spread over 0…64), installed
    alone in a weights folder of its own so that decoding finds it by fingerprint."""
    torch.manual_seed(3)
    yield from installed(tmp_path_factory.mktemp("weights"), PixelCNN(CONFIG).eval(), "blend")


def _med_by_hand(codes: np.ndarray, y: int, x: int) -> list[int]:
    """MED of R, G − R and B − G at (y, x) from codes (H, W, 3), written out pixel by pixel."""
    def at(yy: int, xx: int) -> np.ndarray:
        return codes[yy, xx].astype(int) if yy >= 0 and xx >= 0 else np.zeros(3, int)
    out = []
    for plane in (lambda c: c[0], lambda c: c[1] - c[0], lambda c: c[2] - c[1]):
        w, n, nw = plane(at(y, x - 1)), plane(at(y - 1, x)), plane(at(y - 1, x - 1))
        out.append(min(w, n) if nw >= max(w, n) else max(w, n) if nw <= min(w, n) else w + n - nw)
    return [out[0] + 128, out[1], out[2]]


def test_predictions_are_the_median_edge_detector(kodak_crop):
    codes = kodak_crop[:9, :7].astype(np.int32) - 128
    got = predictor.image_predictions(torch.from_numpy(codes)[None])[0].numpy()
    for y in range(9):
        for x in range(7):
            assert got[y, x].tolist() == _med_by_hand(codes, y, x)
    # the decoder's numpy path gives the same integers as torch's, here on int8 codes
    west, north, nw = (np.asarray(v, dtype=np.int8) for v in np.random.default_rng(0).integers(-128, 128, (3, 500, 4)))
    assert np.array_equal(predictor.predictions(west, north, nw),
                          predictor.predictions(*(torch.from_numpy(v) for v in (west, north, nw))).numpy())


@pytest.mark.parametrize("compiled", [True, False])
def test_encoder_and_decoder_see_the_same_predictions(blend_model, kodak_crop, compiled):
    """The encoder's whole-band predictions and parameters equal the decoder's per-step ones,
    for two lanes of different heights sharing the wavefront's steps, whichever way a step
    runs (the CPU's compiled loops, or torch's operations)."""
    net = weights.load(blend_model)
    pixels = torch.from_numpy(kodak_crop[:33, :24].copy())
    w = pixels.shape[1]
    lanes = [(0, 20), (20, 33)]
    params = [net.band_params(pixels[a:b], 0).view(b - a, w, -1) for a, b in lanes]
    guess = [net.band_predictions(pixels[a:b], 0).view(b - a, w, 3) for a, b in lanes]
    wave = net.wavefront(w, len(lanes))
    assert wave.compiled
    wave.compiled = compiled
    k = net.cfg.reach_right + 1
    compared = 0
    for t in range((w - 1) + k * 19 + 1):
        lane, ys = (np.concatenate(v) for v in zip(*[
            (np.full(len(y), i), y) for i, (a, b) in enumerate(lanes)
            for y in [np.arange(b - a)[(t - k * np.arange(b - a) >= 0) & (t - k * np.arange(b - a) < w)]]]))
        xs = t - k * ys
        cells = wave.locate(lane, ys, xs)
        assert torch.equal(wave.params(cells), torch.stack([params[i][y, x] for i, y, x in zip(lane, ys, xs)]))
        assert np.array_equal(wave.predictions(cells), torch.stack([guess[i][y, x] for i, y, x in zip(lane, ys, xs)]).numpy())
        compared += len(ys)
        first = np.array([a for a, _ in lanes])
        wave.put_pixels(cells, pixels[first[lane] + ys, xs].numpy())
    assert compared == 33 * 24


@pytest.mark.parametrize("channels", [3, 1])
def test_blend_model_round_trips(blend_model, threads, channels):
    """Bit-exact through the codec, in colour and grey, with tiles cut at 16 rows and 11 columns,
    from one process and from two."""
    crop = load("kodim04-48x64.png")[:37, :29]
    pixels = crop if channels == 3 else crop[..., 0].copy()
    data = encode(pixels, blend_model, stream_rows=16, stream_cols=11).data
    threads(1)
    assert np.array_equal(decode(data), pixels)
    threads(2)
    assert np.array_equal(decode(data), pixels)


def test_blend_model_round_trips_with_bands_that_read_the_rows_above(blend_model, kodak_crop):
    pixels = kodak_crop[:40, :30].copy()
    streams, _ = neural.encode_pixels(pixels, blend_model, stream_rows=16, independent=False)
    back = neural.decode_pixels(streams, blend_model.fingerprint, 40, 30, 3, 16, False)
    assert np.array_equal(back, pixels)


def _mixture_params(blend: int, n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random in-range integer parameters of a 3-component blend head with every blend set to
    ``blend``, random pixels and random predictions."""
    rng = np.random.default_rng(1)
    k = CONFIG.components
    groups = [rng.integers(*RANGE[g], size=(n, 3 * k), endpoint=True) for g in CONFIG.groups[:-1]]
    groups.append(np.full((n, 3 * k), blend))
    known = rng.integers(0, 256, size=(n, 3))
    guess = np.stack([rng.integers(0, 256, n), rng.integers(-40, 41, n), rng.integers(-40, 41, n)], 1)
    return np.concatenate(groups, 1).astype(np.int32), known.astype(np.int32), guess.astype(np.int32)


def test_a_full_blend_puts_the_mean_on_the_prediction_and_none_leaves_it():
    net = weights.build(weights.export(PixelCNN(CONFIG).eval()))
    mix = net.mixture
    k3 = 3 * CONFIG.components
    for c in range(3):
        params, known, guess = _mixture_params(64)
        target = predictor.target(guess, known, c)
        mean = mix.channel(params, c, known, predicted=guess)[1]
        assert np.array_equal(mean, np.clip(target[:, None] * 16, *RANGE["mean"]).repeat(CONFIG.components, 1))
        params, known, guess = _mixture_params(0)
        alone = mix.channel(params[:, :-k3], c, known)  # the same head without its blend group
        assert all(np.array_equal(a, b) for a, b in zip(mix.channel(params, c, known, predicted=guess), alone))


def test_numpy_torch_and_the_training_loss_agree_on_blended_means():
    """The integer mixture gives the same means in numpy and torch, and the training loss scores
    the PMF built from them: where a symbol is not in the PMF's floor, its probabilities match
    the integer PMF's to about 1 %."""
    net = weights.build(weights.export(PixelCNN(CONFIG).eval()))
    mix = net.mixture
    rng = np.random.default_rng(2)
    params, known, guess = _mixture_params(0, n=200)
    params[:, -3 * CONFIG.components:] = rng.integers(0, 65, size=(200, 3 * CONFIG.components))
    params[:, 2 * 9:3 * 9] = rng.integers(16, 64, size=(200, 9))  # log-scales wide enough for float
    nll = mixture_nll(torch.from_numpy(params).float().T[None, :, :, None],
                      torch.from_numpy(known).to(torch.uint8).T[None, :, :, None], CONFIG.components,
                      torch.from_numpy(guess)[None, :, None])[0, :, :, 0]
    for c in range(3):
        as_numpy = mix.channel(params, c, known, predicted=guess)
        as_torch = mix.channel(torch.from_numpy(params), c, torch.from_numpy(known), predicted=torch.from_numpy(guess))
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(as_numpy, as_torch))
        pmf = mix.pmf(*as_numpy).astype(np.float64)
        p = pmf[np.arange(200), known[:, c]] / pmf.sum(1)
        likely = p > 1e-3  # well above the PMF's floor, which the float loss does not have
        assert likely.sum() > 40
        assert np.allclose(-np.log(p[likely]), nll[c].numpy()[likely], rtol=0.01, atol=0.01)


def test_configs_without_blend_read_and_write_as_before():
    assert "blend" not in ModelConfig().to_json()
    assert ModelConfig.from_json(ModelConfig(blend=True).to_json()).blend
    assert ModelConfig(components=5).params_per_pixel == 60 and CONFIG.params_per_pixel == 45
