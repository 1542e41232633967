"""The neighbour net: a small MLP that moves every channel's mixture parameters by what the
pixels around it turned out to be: W, N, NW and NE, at reach 2 also WW, NN, NWW, NNW and NNE, and
at reach 3 also NEE, NNWW and NNEE (the whole 5 × 5 causal window).

The network predicts each pixel from its decoded context, but not from how its own predictions
for the neighbours fared: whether their values fell where their mixtures expected. For every
pixel, what each of its three channels told (``coupling.told``: its components' posteriors, how
many of its scales the value landed from each mean, and the value), computed from the network's
own parameters, before any stream's adaptation and before any moves, is one row of features;
the neighbour net reads the rows of the pixel's neighbours (``sides``; zeros outside its stream's
tile, as the network sees zeros there) and adds its outputs to each channel's logits, means and
log-scales (``config.neighbours`` hidden units; 0: no neighbour net).

Because the features come from unmoved parameters, training and the encoder compute them for a
whole image at once, and the decoder keeps the last rows of them per lane. The net is a grid MLP
like the coupling net (``coupling.grid_mlp``, ``coupling.IntegerMLP``): the float form trains on
exactly the integers the coder runs on, and its output weights start at 0, so a model grown to
have the net codes exactly as before; so does one grown to a wider reach, its new inputs read
with zero weights.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import neighbours_read
from .coupling import (GAIN, GRIDS, MOVED, IntegerMLP, features_per_channel, grid_mlp, integer_layers, told,
                       told_features)
from .mixture import GRID, IntegerMixture, _log_probs, conditioned_means, log2_posterior, round_ste, split_groups

def sides(reach: int) -> tuple[tuple[int, int], ...]:
    """The neighbours (dy, dx) a net of ``reach`` reads, in the order of its features
    (``config.neighbours_read``; ``ModelConfig`` checks that its wavefront's decoder has every one)."""
    return tuple(neighbours_read(reach).values())


def inputs(components: int, reach: int) -> int:
    """Features the net reads: each side's three channels' told features."""
    return len(sides(reach)) * 3 * features_per_channel(components)


def outputs(components: int) -> int:
    """Moves the net makes: each channel's logits, means and log-scales, K of each."""
    return 3 * len(MOVED) * components


def unmoved_told(params: Tensor, x: Tensor, components: int, predicted: Tensor | None = None) -> Tensor:
    """What each channel of every pixel tells (B, 3·(2K + 1), H, W), integer features on their
    grid (``coupling.told``), from the head's parameters ``params`` (B, P, H, W) as they are
    (no posterior, coupling or neighbour moves) and the values ``x`` (B, 3, H, W)."""
    g = split_groups(params, components)
    xf = x.to(params.dtype).unsqueeze(2) * GRID["mean"]
    mean = conditioned_means(g, x, predicted)
    out = []
    for c in range(3):
        logit, logscale = g["logit"][:, c], g["logscale"][:, c]
        post = log2_posterior(logit, _log_probs(xf[:, c], x[:, c], mean[:, c], logscale))
        out.append(told(post, mean[:, c], logscale, x[:, c]))
    return torch.cat(out, 1)


def around(features: Tensor, reach: int) -> Tensor:
    """Each pixel's neighbours' features (B, sides·F, H, W), side after side (``sides``), from
    every pixel's (B, F, H, W); zeros beyond the image's edges."""
    h, w = features.shape[2:]
    padded = F.pad(features, (2, 2, 2, 0))  # two columns either side, two rows above
    return torch.cat([padded[:, :, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w] for dy, dx in sides(reach)], 1)


class NeighbourNet(nn.Module):
    """The float neighbour net: one hidden layer from the neighbours' told features (``sides``
    of ``reach``) to every channel's moves."""

    def __init__(self, components: int, hidden: int, reach: int):
        super().__init__()
        f, o = inputs(components, reach), outputs(components)
        self.k, self.reach = components, reach
        self.w1 = nn.Parameter(torch.randn(hidden, f) / math.sqrt(f) / GAIN)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.zeros(o, hidden))
        self.b2 = nn.Parameter(torch.zeros(o))

    def integer_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The weights and biases on their integer grids (``coupling.integer_layers``)."""
        return integer_layers(self.w1, self.b1, self.w2, self.b2)

    def forward(self, told_features: Tensor) -> Tensor:
        """The moves (B, 3, 3, K, H, W) of each channel's logits, means and log-scales (the order
        of ``MOVED``), on their grids, from every pixel's ``unmoved_told`` (B, 3·(2K + 1), H, W)
        (read as data: no gradient flows into the parameters that gave them)."""
        out = grid_mlp(self.integer_weights(), around(told_features.detach(), self.reach))
        grids = torch.from_numpy(GRIDS).to(out.dtype).view(1, 1, -1, 1, 1, 1)
        return round_ste(out.unflatten(1, (3, len(MOVED), self.k)) * grids)


class IntegerNeighbours:
    """The neighbour net in integers (an ``IntegerMLP``; weights files store its layers,
    ``NeighbourNet.integer_weights``). The encoder (``band_moves``) and the decoder's step both
    call ``moves``, so they move alike."""

    def __init__(self, layers: Sequence[np.ndarray], components: int, reach: int):
        self.k, self.reach = components, reach
        self.net = IntegerMLP(layers, inputs(components, reach), outputs(components), "neighbour net")
        self._grids = np.tile(GRIDS.repeat(components), 3)

    def moves(self, near: np.ndarray) -> np.ndarray:
        """The moves (n, 3, 3, K) int64 of each channel's logits, means and log-scales, from what
        each pixel's neighbours told (n, sides, 3, 2K + 1) (``IntegerMixture.told``, ``sides`` of
        its reach, zeros for those outside its tile)."""
        return self.net(told_features(near, self.k), self._grids).reshape(-1, 3, len(MOVED), self.k)


def sides_of(told_rows: np.ndarray, reach: int) -> np.ndarray:
    """Each pixel's neighbours' told (h·w, sides, 3, 2K + 1), side after side (``sides`` of
    ``reach``), from every pixel's of a band (h, w, 3, 2K + 1); zeros outside the band, as
    ``around`` pads."""
    h, w = told_rows.shape[:2]
    padded = np.zeros((h + 2, w + 4, *told_rows.shape[2:]), dtype=np.int64)
    padded[2:, 2:-2] = told_rows
    read = sides(reach)
    return np.stack([padded[2 + dy:2 + dy + h, 2 + dx:2 + dx + w] for dy, dx in read], 2).reshape(
        h * w, len(read), *told_rows.shape[2:])


#: Rows of a band whose neighbours the encoder gathers at once (``band_moves``): each pixel's
#: (sides, 3, 2K + 1) int64 is kilobytes at reach 3, too much to hold for a whole tile (DESIGN C3).
MOVE_ROWS = 16


def band_moves(mixture: IntegerMixture, params: np.ndarray, band: np.ndarray, predicted: np.ndarray | None,
               width: int) -> np.ndarray:
    """The neighbour net's moves (n, 3, 3, K) of every pixel of a band (raster order, ``width``
    wide), from their head parameters as the network gave them (n, P), values (n, 3) and
    classical predictions: what the decoder's step computes from its row cache (``steps``).
    Gathered ``MOVE_ROWS`` rows at a time, each with the rows above it that its sides read."""
    told_rows = mixture.unmoved_told(params, band, predicted)
    told_rows = told_rows.reshape(-1, width, *told_rows.shape[1:])
    net = mixture.neighbours
    up = max(-dy for dy, _ in sides(net.reach))
    out = []
    for y0 in range(0, len(told_rows), MOVE_ROWS):
        top = max(0, y0 - up)
        near = sides_of(told_rows[top:y0 + MOVE_ROWS], net.reach)[(y0 - top) * width:]
        out.append(net.moves(near))
    return np.concatenate(out)
