"""The coupling net: a small MLP that moves G's (and B's) mixture parameters by what R (and G)
turned out to be.

Once a channel is decoded, the channels after it know more than the linear colour coefficients
and the posterior weights carry: each of its components' posterior, how many of its scales the
value landed from each mean, and the value itself. For each later channel, an MLP of one
hidden layer reads those integers of every channel before it and adds its outputs to that
channel's logits, means and log-scales (``config.coupling`` hidden units; 0: no coupling net).
The float form here trains on exactly the grids the integer form runs on: every feature an
integer within ±FEATURE_MAX, weights on power-of-two grids, the hidden layer on a grid of
1/HIDDEN_GRID, the outputs rounded onto the parameter grids (straight-through gradients).
Its output weights start at 0, so a model grown to have the net codes exactly as before.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import CertificateError
from .mixture import GRID, TOLD_MAX, floor_ste, round_ste

#: Every feature is an integer within ±FEATURE_MAX; the float net reads it divided by that.
FEATURE_MAX = TOLD_MAX
#: Bits dropped from a log-posterior (1/POSTERIOR_UNIT bits) to give its feature (1/16 bits).
POSTERIOR_DOWN = 4
#: Feature units per scale of distance between the value and a component's mean: the mean
#: grid's, as ``IntegerMixture.told`` computes them from means on it.
Z_UNIT = GRID["mean"]
#: Largest magnitude of an integer weight or bias: every sum stays far below 2^63.
INTEGER_MAX = 2 ** 24
#: Fixed-point bits of the first and second layers' weights and biases.
W1_BITS, W2_BITS = 16, 12
#: The hidden layer's grid (units per float unit) and its top (a clamped ReLU).
HIDDEN_GRID, HIDDEN_MAX = 16, 255
#: Float units of a weight per unit of its parameter: Adam moves a weight about
#: ``lr · GAIN`` a step, a hundred times the rest of the model's step (like ``POSTERIOR_GAIN``).
GAIN = 100.0
#: The parameter groups the net moves, in the order of its outputs.
MOVED = ("logit", "mean", "logscale")


def features_per_channel(components: int) -> int:
    """Features each earlier channel gives: its components' log-posteriors, their scaled
    distances to the value, and the value."""
    return 2 * components + 1


def told(post: Tensor, mean: Tensor, logscale: Tensor, x: Tensor) -> Tensor:
    """What a decoded channel tells the ones after it, as the integer features (B, 2K + 1, H, W)
    on their grid (floored, as ``IntegerMixture.told`` and ``IntegerCoupling.moves`` floor
    them; straight-through), from its components' log2 posteriors at the value ``post`` (in
    1/POSTERIOR_UNIT bits, as ``mixture_nll`` computes them once for both uses), its means and
    log-scales (B, K, H, W, integer grids) and the value ``x`` (B, H, W)."""
    post = floor_ste(post / 2 ** POSTERIOR_DOWN)
    xf = x.to(mean.dtype).unsqueeze(1)
    z = (xf - mean / GRID["mean"]) * torch.exp(-logscale / GRID["logscale"]) * Z_UNIT
    z = torch.clamp(floor_ste(z), -FEATURE_MAX, FEATURE_MAX)
    return torch.cat([post, z, xf - 128], 1)


def integer_layers(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A grid MLP's float weights on their integer grids (straight-through): the first layer's
    per feature unit (2^W1_BITS / FEATURE_MAX per float unit), its bias per 2^W1_BITS, the
    second layer's and its bias per 2^W2_BITS."""
    return (round_ste(w1 * GAIN * 2 ** W1_BITS / FEATURE_MAX), round_ste(b1 * GAIN * 2 ** W1_BITS),
            round_ste(w2 * GAIN * 2 ** W2_BITS), round_ste(b2 * GAIN * 2 ** W2_BITS))


def grid_mlp(layers: tuple[Tensor, Tensor, Tensor, Tensor], features: Tensor) -> Tensor:
    """The float outputs (B, O, H, W) of a grid MLP of integer ``layers`` (``integer_layers``)
    from integer features (B, F, H, W): the hidden layer rounded onto its grid and clamped
    (0…HIDDEN_MAX), as ``IntegerMLP`` computes it; the caller rounds the outputs onto its grids."""
    w1, b1, w2, b2 = layers
    a = torch.einsum("of,bfhw->bohw", w1, features) / 2 ** W1_BITS + (b1 / 2 ** W1_BITS).view(1, -1, 1, 1)
    h = torch.clamp(round_ste(a * HIDDEN_GRID), 0, HIDDEN_MAX)
    return torch.einsum("oh,bhyx->boyx", w2, h) / (2 ** W2_BITS * HIDDEN_GRID) + (b2 / 2 ** W2_BITS).view(1, -1, 1, 1)


def on_grids(outputs: Tensor, k: int) -> dict[str, Tensor]:
    """A grid MLP's outputs (B, 3K, ...) as moves of each group in ``MOVED`` (B, K, ...), each
    rounded onto its group's grid (straight-through)."""
    moves = outputs.unflatten(1, (len(MOVED), k))
    return {g: round_ste(moves[:, i] * GRID[g]) for i, g in enumerate(MOVED)}


class CouplingNet(nn.Module):
    """The float coupling net of G (reading R's features) and of B (reading R's and G's)."""

    def __init__(self, components: int, hidden: int):
        super().__init__()
        f = features_per_channel(components)
        self.k = components
        self.w1 = nn.ParameterList(nn.Parameter(torch.randn(hidden, f * c) / math.sqrt(f * c) / GAIN) for c in (1, 2))
        self.b1 = nn.ParameterList(nn.Parameter(torch.zeros(hidden)) for _ in (1, 2))
        self.w2 = nn.ParameterList(nn.Parameter(torch.zeros(len(MOVED) * components, hidden)) for _ in (1, 2))
        self.b2 = nn.ParameterList(nn.Parameter(torch.zeros(len(MOVED) * components)) for _ in (1, 2))

    told = staticmethod(told)

    def integer_weights(self, c: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Channel ``c``'s weights and biases on their integer grids (``integer_layers``)."""
        i = c - 1
        return integer_layers(self.w1[i], self.b1[i], self.w2[i], self.b2[i])

    def forward(self, c: int, features: Tensor) -> dict[str, Tensor]:
        """Channel ``c``'s moves (B, K, H, W) of each group in ``MOVED``, on the groups' grids,
        from the integer features (B, (2K + 1)·c, H, W) of the channels before it."""
        return on_grids(grid_mlp(self.integer_weights(c), features), self.k)


#: Bits the first layer's sums drop onto the hidden grid, and the outputs' sums onto their unit.
_HIDDEN_DOWN = W1_BITS - int(math.log2(HIDDEN_GRID))
_OUT_DOWN = W2_BITS + int(math.log2(HIDDEN_GRID))


class IntegerMLP:
    """A grid MLP in integers, as weights files store it (``integer_layers``): the first layer's
    weights (H, F) and biases (H,), the second's (O, H) and (O,), int64, each within
    ±INTEGER_MAX. Its products run as float64 GEMMs (``_products``), exactly: features within ±FEATURE_MAX and
    hidden units within 0…HIDDEN_MAX keep every sum below 2^53 (``FEATURE_LIMIT``), so BLAS
    adds integers in whatever order it likes and the result is the same on every machine."""

    def __init__(self, layers: Sequence[np.ndarray], inputs: int, outputs: int, name: str):
        w1, b1, w2, b2 = (np.asarray(v) for v in layers)
        hidden = w1.shape[0]
        if w1.shape != (hidden, inputs) or b1.shape != (hidden,) or w2.shape != (outputs, hidden) \
                or b2.shape != (outputs,):
            raise CertificateError(f"{name} layers have the wrong shapes")
        if max(int(np.abs(v).max(initial=0)) for v in (w1, b1, w2, b2)) > INTEGER_MAX:
            raise CertificateError(f"{name} weights beyond ±{INTEGER_MAX}: their sums could overflow")
        if max(inputs * FEATURE_MAX, hidden * HIDDEN_MAX) * INTEGER_MAX >= 2 ** 53:
            raise CertificateError(f"{name} has too many units for exact float64 sums")
        self.layers = tuple(np.ascontiguousarray(v, dtype=np.int64) for v in (w1, b1, w2, b2))
        self._w1t, self._w2t = (torch.from_numpy(v.T.astype(np.float64)) for v in (self.layers[0], self.layers[2]))

    def __call__(self, features: np.ndarray, grids: np.ndarray) -> np.ndarray:
        """The outputs (n, O) int64 of integer ``features`` (n, F), each on its grid (``grids``
        (O,): units per float unit), as ``grid_mlp`` and ``on_grids`` compute them: h =
        clip((W1·f + b1 + half) >> down, 0, HIDDEN_MAX), then (W2·h + HIDDEN_GRID·b2) times the
        grid, rounded (half up)."""
        _, b1, _, b2 = self.layers
        acc = _products(features, self._w1t) + (b1 + (1 << (_HIDDEN_DOWN - 1)))
        hidden = np.minimum(np.maximum(acc >> _HIDDEN_DOWN, 0), HIDDEN_MAX)
        out = _products(hidden, self._w2t) + HIDDEN_GRID * b2
        return (out * grids + (1 << (_OUT_DOWN - 1))) >> _OUT_DOWN


def _products(a: np.ndarray, b: Tensor) -> np.ndarray:
    """a @ b of integers, exact, as int64: a float64 GEMM through torch, whose threads the codec's
    workers limit (numpy's BLAS would run its own: ``parallel``)."""
    return (torch.from_numpy(a.astype(np.float64)) @ b).numpy().astype(np.int64)


def told_features(told: np.ndarray, k: int) -> np.ndarray:
    """What channels told ((..., 2K + 1) int64 each, ``IntegerMixture.told``) as a grid MLP's
    features: the log-posteriors >> POSTERIOR_DOWN (1/16 bits, as ``told`` floors them), the
    rest as told; flattened over the leading axes after the first, (n, F)."""
    out = told.copy()
    out[..., :k] >>= POSTERIOR_DOWN
    return out.reshape(out.shape[0], -1)


class IntegerCoupling:
    """The coupling net in integers: for G and B, an ``IntegerMLP`` (weights files store their
    layers, ``CouplingNet.integer_weights``). The encoder and the decoder's step both call
    ``moves``, so they move alike."""

    def __init__(self, layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], components: int):
        self.k = components
        f, out = features_per_channel(components), len(MOVED) * components
        self.nets = [IntegerMLP(layer, f * c, out, f"coupling layers of channel {c}") for c, layer in enumerate(layers, 1)]

    def moves(self, c: int, told: Sequence[np.ndarray]) -> np.ndarray:
        """Channel ``c``'s moves (n, 3, K) int64 of its logits, means and log-scales (the order of
        ``MOVED``), on their grids, from what the channels before it told ((n, 2K + 1) each,
        ``IntegerMixture.told``): the float net's arithmetic in integers."""
        features = told_features(np.stack(told[:c], 1), self.k)
        return self.nets[c - 1](features, GRIDS.repeat(self.k)).reshape(-1, len(MOVED), self.k)


#: The moved groups' grids, in the order of ``MOVED``.
GRIDS = np.array([GRID[g] for g in MOVED], dtype=np.int64)


class FrozenCoupling(CouplingNet):
    """The float net computing with an integer net's weights (exact in float32: none exceeds
    2^24): what the encoder's fit of a tile's head offsets trains through (``adapt.fit_head``)."""

    def __init__(self, integer: IntegerCoupling):
        nn.Module.__init__(self)
        self.k = integer.k
        self.frozen = [tuple(torch.from_numpy(v).to(torch.float32) for v in net.layers) for net in integer.nets]

    def integer_weights(self, c: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.frozen[c - 1]
