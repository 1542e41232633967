"""The wavefront decode schedule (DESIGN C2) and the symbol order it implies in each stream.

Pixel (y, x) is decoded at step ``t = x + (r + 1)·y``, where ``r`` is the largest column offset
to the right, in rows above, that any single layer reads: every activation the pixel needs was
computed at an earlier step, so all pixels of one step form one batch. The image is cut into
bands of ``stream_rows`` rows, and (format version 3) each band into tiles of ``stream_cols``
columns, each with its own coded stream; within a stream the symbols come step by step, and
within a step all R values (by increasing y), then G, then B (greyscale images code only the
first channel, with G = B = R as the network's context).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Tile(NamedTuple):
    """The rectangle of rows [y0, y1) and columns [x0, x1) that one stream codes."""

    y0: int
    y1: int
    x0: int
    x1: int


def stream_tiles(height: int, width: int, stream_rows: int, stream_cols: int = 0) -> list[Tile]:
    """The streams' tiles in stream order: bands of ``stream_rows`` rows from the top, each cut
    into tiles of ``stream_cols`` columns from the left (0: one tile, the whole width)."""
    cols = stream_cols or width
    return [Tile(y0, min(height, y0 + stream_rows), x0, min(width, x0 + cols))
            for y0 in range(0, height, stream_rows) for x0 in range(0, width, cols)]


def step_count(height: int, width: int, r: int) -> int:
    """Number of wavefront steps for an image: about W + (r+1)·H rather than W·H."""
    return (width - 1) + (r + 1) * (height - 1) + 1


def step_rows(t: int, heights: np.ndarray, widths: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [y0, y1) holding a pixel of step t in each of several images (tiles) of the given
    ``heights`` and ``widths``, all at once (empty where y0 ≥ y1); the pixel's column in row y
    is ``t − (r+1)·y``."""
    k = r + 1
    return np.maximum(0, (t - widths) // k + 1), np.minimum(heights, t // k + 1)


def band_symbol_order(y0: int, y1: int, width: int, r: int, channels: int = 3
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the band of rows [y0, y1): (pixels, steps, positions).

    ``pixels``: the band's pixel indices (raster order within the band) sorted into decode order;
    ``steps``: each sorted pixel's step; ``positions`` (channels, n): where each coded channel's
    symbol of each sorted pixel stands in the band's stream (greyscale codes one channel).
    """
    ys, xs = np.divmod(np.arange((y1 - y0) * width, dtype=np.int64), width)
    t = xs + (r + 1) * (ys + y0)
    pixels = np.lexsort((ys, t))                 # by step, then by row
    steps = t[pixels]
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    sizes = np.diff(np.r_[starts, steps.size])
    group = np.repeat(np.arange(starts.size), sizes)
    rank = np.arange(steps.size) - starts[group]
    base = channels * starts[group] + rank
    positions = np.stack([base + c * sizes[group] for c in range(channels)])
    return pixels, steps, positions
