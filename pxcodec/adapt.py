"""Forward adaptation: per-stream offsets that fit the model's distributions to one image.

The encoder sees a whole tile (or band) before coding it, so it can measure how the model's
predictions miss on this image and say so in 8 bytes at the start of the tile's stream: per channel, an
offset added to every log-scale (wider or narrower distributions) and one added to every
conditioned mean (a bias), both on the model's integer grids. The decoder only applies them,
so they cost no exactness (DESIGN C1): the offsets are data, not a computation to repeat.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import torch

from .errors import CorruptError
from .network import IntegerPixelCNN

#: Largest |offset|: log-scale grid units (1/16 of a natural-log unit) and mean grid units (1/16
#: of a pixel level).
MAX_SCALE = 32
MAX_MEAN = 32
#: Pixels of a band (evenly spaced) on which the encoder measures candidate offsets.
SAMPLE = 4096
_PREFIX = struct.Struct("<8b")   # scale R G B, mean R G B, two zero bytes


@dataclass
class Offsets:
    """One band's offsets, per channel R, G, B (grey files use only R)."""

    scale: list[int] = field(default_factory=lambda: [0, 0, 0])
    mean: list[int] = field(default_factory=lambda: [0, 0, 0])

    def pack(self) -> bytes:
        """The 8-byte prefix of the band's stream."""
        return _PREFIX.pack(*self.scale, *self.mean, 0, 0)

    @classmethod
    def unpack(cls, stream: bytes) -> tuple["Offsets", bytes]:
        """A band stream's offsets and the coder's words after them; impossible ones are corrupt."""
        if len(stream) < _PREFIX.size:
            raise CorruptError("band stream too short for its adaptation offsets")
        values = _PREFIX.unpack_from(stream)
        scale, mean = list(values[:3]), list(values[3:6])
        if any(values[6:]) or max(map(abs, scale)) > MAX_SCALE or max(map(abs, mean)) > MAX_MEAN:
            raise CorruptError(f"band stream has impossible adaptation offsets {values}")
        return cls(scale, mean), stream[_PREFIX.size:]

    def as_row(self) -> list[int]:
        """(scale R, G, B, mean R, G, B), the decoder's per-stream row."""
        return self.scale + self.mean


def choose(net: IntegerPixelCNN, params: torch.Tensor, pixels: torch.Tensor, channels: int) -> Offsets:
    """The offsets that minimise the exact code length of ``SAMPLE`` pixels of a band.

    Per channel (they are independent: a channel's mean depends on earlier channels' values,
    not on their offsets), coordinate descent: scale, then mean, then scale again, each a
    coarse-to-fine search (steps 8, 4, 2, 1) over exact integer code lengths that cost K table
    lookups per symbol (``IntegerMixture.code_lengths``). The sample is small, so the search
    runs in numpy on the host whatever the model's device.
    """
    step = max(1, pixels.shape[0] // SAMPLE)
    p = params[::step].to(torch.int64).cpu().numpy()
    x = pixels[::step].to(torch.int64).cpu().numpy()
    mixture = net.mixture
    out = Offsets()
    for c in range(channels):
        logit, mean0, scale0 = mixture.channel(p, c, x)
        bits = mixture.code_lengths(logit, x[:, c])

        def cost(scale: int, mean: int) -> float:
            if abs(scale) > MAX_SCALE or abs(mean) > MAX_MEAN:
                return math.inf
            return float(bits(*mixture.shift(mean0, scale0, scale, mean)).sum())

        scale = _search(lambda s: cost(s, 0), MAX_SCALE)
        mean = _search(lambda m: cost(scale, m), MAX_MEAN)
        out.scale[c] = _search(lambda s: cost(s, mean), MAX_SCALE)
        out.mean[c] = mean
    return out


def _search(cost, limit: int) -> int:
    """argmin of ``cost`` over the integers in ±limit: a grid of step 8, then steps 4, 2, 1."""
    seen: dict[int, float] = {}

    def f(v: int) -> float:
        if v not in seen:
            seen[v] = cost(v)
        return seen[v]

    best = min(range(-limit, limit + 1, 8), key=f)
    for step in (4, 2, 1):
        best = min((best - step, best, best + step), key=f)
    return best
