"""The classical prediction a blending model's means move towards: LOCO-I's median edge detector
(MED) on the R plane and on the colour-difference planes G − R and B − G.

Where colour is smooth, the colour difference of a pixel is what its neighbours' is, and MED
on that plane predicts it better than the network does (`benchmarks/channel_costs.py`): a
nonlinear choice between W, N and W + N − NW that a small causal network does not learn
precisely. A model with ``ModelConfig.blend`` outputs, per component, how far each channel's
mean moves towards R̂ = MED(R), Ĝ = R + MED(G − R), B̂ = G + MED(B − G) (``mixture``).

Everything is computed from the first layer's pixel codes (x − 128, zeros outside the image or
tile, as every code path stores them), by this one function on every path, so the encoder,
the decoder and training see the same integers (DESIGN C1).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Array = Tensor | np.ndarray


def _xp(a: Array):
    """The array module of ``a``: numpy for numpy arrays (the decoder's small steps), else torch."""
    return np if isinstance(a, np.ndarray) else torch


def med(west: Array, north: Array, north_west: Array) -> Array:
    """LOCO-I's median edge detector: min(W, N) below an edge NW ≥ max, max(W, N) above one
    NW ≤ min, else the plane W + N − NW."""
    xp = _xp(west)
    lo, hi = xp.minimum(west, north), xp.maximum(west, north)
    return xp.where(north_west >= hi, lo, xp.where(north_west <= lo, hi, west + north - north_west))


def _planes(codes: Array) -> Array:
    """Pixel codes (..., ≥3) → (..., 3) int32: R's code, G − R, B − G."""
    c = codes[..., :3]
    c = c.astype(np.int32) if isinstance(c, np.ndarray) else c.to(torch.int32)
    return _xp(c).stack([c[..., 0], c[..., 1] - c[..., 0], c[..., 2] - c[..., 1]], -1)


def predictions(west: Array, north: Array, north_west: Array) -> Array:
    """(..., 3) int32 from the pixel codes (..., ≥3) of each pixel's W, N and NW neighbours:
    MED of R (a level, 0…255), of G − R and of B − G (differences). Tensors or numpy arrays."""
    p = med(_planes(west), _planes(north), _planes(north_west))
    p[..., 0] += 128
    return p


def image_predictions(codes: Tensor) -> Tensor:
    """``predictions`` of every pixel of pixel codes (B, H, W, ≥3), zeros outside: (B, H, W, 3)."""
    padded = F.pad(codes[..., :3].to(torch.int32), (0, 0, 1, 0, 1, 0))
    return predictions(padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, :-1, :-1])


def target(predicted: Array, known: Array, ch: int) -> Array:
    """Channel ``ch``'s classical prediction (…) in levels, from ``predictions`` (…, 3) and the
    pixel's values (…, ≥ch, channels last) coded before it: R̂, R + MED(G − R) or G + MED(B − G).
    Operators only: tensors or numpy arrays."""
    return predicted[..., 0] if ch == 0 else known[..., ch - 1] + predicted[..., ch]
