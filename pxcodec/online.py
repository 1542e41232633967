"""Backward adaptation (format version 5): each stream learns, from the symbols it has already
coded, which log-scale offset suits each local context.

How wrong the model's scales are depends on the neighbourhood: next to surprising pixels it is
too sure of itself, in predictable areas too cautious, and by amounts that differ from image to
image. So for every coded subpixel both sides measure its *surprise* (its distance from the
model's dominant component, in that component's scales) and sort each next subpixel into one of
``CONTEXTS`` contexts by the surprise of its causal neighbours (and of its own pixel's earlier
channels) and by its dominant component's scale. Per stream, channel and context they keep the
code length, in integer 1/4096-bit units, that every candidate offset would have given the
symbols coded so far, and each step uses the best candidate so far. It is all integers computed from data both sides
have, so the decoder rebuilds the encoder's choices exactly (DESIGN C1), and nothing is sent.

From format version 7 the contexts of G and B are also split by whether the colour difference to
the channel before (G − R, B − G) is flat around the subpixel (``busy``): where it is, the model
is too cautious about G and B by more than elsewhere.

Up to format version 9 only the subpixels of every fourth wavefront step teach; from version 10
every subpixel does (``learning_interval``).
"""
from __future__ import annotations


import numba
import numpy as np

from .mixture import RANGE, IntegerMixture, cost, mixture_weights, symbol_mass

#: The first format version whose streams learn (later versions learn too).
VERSION = 5
#: Log-scale offsets (grid units of 1/16) a context can learn; 0 first, so it wins ties (and
#: every context starts at 0).
CANDIDATES = np.array([0, -1, 1, -3, 3, -6, 6, -10, 10, -16, 16], dtype=np.int32)
#: Context boundaries on a subpixel's summed neighbour surprise (1/16 scale units): W + N +
#: (NW + NE) / 2 of the same channel, plus twice the surprise of the pixel's earlier channels,
#: with boundaries three times as wide for G and B: seven levels.
EDGES = np.array([8, 16, 24, 40, 64, 112], dtype=np.int64)
#: Bounds on the dominant component's own log-scale (1/16 units: scales e^0 and e^1.5), which
#: splits each of those seven levels in three: 21 contexts in all.
SCALE_EDGES = np.array([0, 24], dtype=np.int64)
CONTEXTS = (EDGES.size + 1) * (SCALE_EDGES.size + 1)
#: The first format version whose G and B contexts are split by a flat or busy colour difference.
SPLIT_VERSION = 7
#: Largest |W − NW| + |N − NW| + |N − NE| of the colour-difference plane still counted as flat.
FLAT_MAX = 1
_EDGES_AFTER_R = 3 * EDGES
_LOGSCALE_LO = RANGE["logscale"][0]
#: Up to format version 9, streams learn from the subpixels of every LEARN_EVERY-th step of their
#: wavefront only (the step counted within the stream): a quarter of the work.
LEARN_EVERY = 4
#: The first format version whose streams learn from every step: 0.15–0.19 % smaller files of
#: the held-out photos, for up to 0.2 s more of a Kodak decode (README, *Learning from every step*).
EVERY_STEP_VERSION = 10
#: Largest surprise recorded (1/16 scale units); beyond it every pixel is equally surprising.
MAX_SURPRISE = 4095
def dominant(logit: np.ndarray, mean: np.ndarray, logscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and log-scale (n,) of each symbol's dominant component: the largest logit, the first
    on ties."""
    pick = (np.arange(logit.shape[0]), logit.argmax(1))
    return mean[pick], logscale[pick]


@numba.njit(cache=True, nogil=True)
def surprise_of(mean, logscale, x, inv_scale):
    """|x − mean| / scale (1/16 units, capped at ``MAX_SURPRISE``) of a symbol x under its
    dominant component's mean and log-scale; ``inv_scale``: ``IntegerMixture.inv_scale``."""
    return min((abs(x * 16 - mean) * inv_scale[logscale - _LOGSCALE_LO]) >> 16, MAX_SURPRISE)


@numba.njit(cache=True, nogil=True)
def _surprises(mean, logscale, x, inv_scale, out):
    for i in range(x.size):
        out[i] = surprise_of(np.int64(mean[i]), logscale[i], np.int64(x[i]), inv_scale)


def surprise(mixture: IntegerMixture, mean: np.ndarray, logscale: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``surprise_of`` symbols x (n,) under their dominant components' means and log-scales
    (n,), int32."""
    out = np.empty(x.size, dtype=np.int32)
    _surprises(mean, logscale, x, mixture.inv_scale, out)
    return out


@numba.njit(cache=True, nogil=True)
def around(west, north, north_west, north_east):
    """The neighbours' part of a context, W + N + (NW + NE) / 2 of their surprise (0 outside
    the stream): numbers or arrays."""
    return west + north + ((north_west + north_east) >> 1)


@numba.njit(cache=True, nogil=True)
def busy(west, north, north_west, north_east):
    """Whether a colour-difference plane (a channel minus the one before it) varies around a
    subpixel, from its causal neighbours' values (0 outside the stream): False where flat.
    Numbers or arrays."""
    return np.abs(west - north_west) + np.abs(north - north_west) + np.abs(north - north_east) > FLAT_MAX


def contexts_per_channel(version: int) -> int:
    """How many contexts each channel of a stream of format ``version`` learns in."""
    return 2 * CONTEXTS if version >= SPLIT_VERSION else CONTEXTS


@numba.njit(cache=True, nogil=True)
def context_of(near, own, channel, logscale):
    """Context of a subpixel of ``channel`` from its neighbours' surprise (``around``), the summed
    surprise ``own`` of its pixel's earlier channels and its dominant component's log-scale."""
    value, edges = (near + 2 * own, _EDGES_AFTER_R) if channel else (near, EDGES)
    level, scale = 0, 0
    for edge in edges:  # searchsorted, side right: the edges at or below the value
        if value >= edge:
            level += 1
    for edge in SCALE_EDGES:
        if logscale >= edge:
            scale += 1
    return level * (SCALE_EDGES.size + 1) + scale


@numba.njit(cache=True, nogil=True)
def _contexts(near, own, channel, logscale, out):
    for i in range(out.size):
        out[i] = context_of(near[i], own[i, :channel].sum(), channel, logscale[i])


def context(near: np.ndarray, own: np.ndarray, channel: int, logscale: np.ndarray) -> np.ndarray:
    """``context_of`` each subpixel (n,) of ``channel``: its neighbours' surprise (n,), its
    pixel's earlier channels' surprise (n, ≥ channel), its dominant log-scale (n,)."""
    out = np.empty(near.size, dtype=np.int64)
    _contexts(near, np.ascontiguousarray(own, dtype=np.int64), channel, logscale, out)
    return out


@numba.njit(cache=True, nogil=True)
def candidates_cost(logit, mean, logscale, x, candidates, cdf, exp, cols, w, out):
    """Every candidate's ``cost`` of one symbol x under its pixel's (K,) parameters, every
    log-scale moved by the candidate, added to ``out`` (C,); ``w``: (K,) scratch."""
    total = mixture_weights(logit, exp, w)
    for j in range(candidates.size):
        out[j] += cost(symbol_mass(w, total, mean, logscale, candidates[j], x, cdf, cols))


@numba.njit(cache=True, nogil=True)
def _candidate_costs(logit, mean, logscale, x, candidates, cdf, exp, cols, out):
    w = np.empty(logit.shape[1], dtype=np.int64)
    for i in range(x.size):
        candidates_cost(logit[i], mean[i], logscale[i], x[i], candidates, cdf, exp, cols, w, out[i])


def candidate_costs(mixture: IntegerMixture, logit: np.ndarray, mean: np.ndarray, logscale: np.ndarray,
                    x: np.ndarray) -> np.ndarray:
    """Integer code length (n, len(CANDIDATES)) of each symbol x (n,) under its mixture, every
    log-scale moved by each candidate offset (``mixture.symbol_mass``)."""
    out = np.zeros((x.size, CANDIDATES.size), dtype=np.int64)
    ints = (np.ascontiguousarray(v, dtype=np.int32) for v in (logit, mean, logscale))
    _candidate_costs(*ints, x, CANDIDATES, mixture.host_cdf, mixture.host_exp, mixture.cols, out)
    return out


def learning_interval(version: int) -> int:
    """Streams of format ``version`` learn from the subpixels of every n-th step of their wavefront."""
    return 1 if version >= EVERY_STEP_VERSION else LEARN_EVERY


def learned(mixture: IntegerMixture, channels: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
            x: np.ndarray, height: int, width: int, steps: np.ndarray, version: int,
            chunk: int = 16384) -> np.ndarray:
    """The encoder's side: the offset (channels, n) int32 the decoder will have learned for each
    subpixel of a stream of ``height`` × ``width`` pixels (raster order), from each channel's
    parameters (logits, means, log-scales (n, K), forward offsets applied) and the pixels x
    (n, ≥ channels), its pixel's wavefront step in the stream (n,) deciding what came before it,
    with the contexts of format ``version``.

    Per channel: every candidate's cost of every learning subpixel, summed per (step, context),
    then cumulated over the earlier steps only; each subpixel takes the cheapest candidate of its
    context at its step. ``chunk`` pixels at a time bound the (chunk, candidates, K) work arrays.
    """
    n = height * width
    per_channel = contexts_per_channel(version)
    split = per_channel > CONTEXTS
    rank = np.unique(steps, return_inverse=True)[1].reshape(-1)
    slots = (int(rank.max()) + 1) * per_channel
    main = [dominant(*p) for p in channels]
    seen = np.stack([surprise(mixture, *m, x[:, c]) for c, m in enumerate(main)], 1)

    def neighbours(values: np.ndarray) -> tuple[np.ndarray, ...]:
        """W, N, NW, NE (n, ...) of per-pixel ``values`` (n, ...), zeros outside the stream."""
        plane = np.pad(values.reshape(height, width, -1), ((1, 0), (1, 1), (0, 0)))
        return tuple(v.reshape(n, -1) for v in (plane[1:, :-2], plane[:-1, 1:-1], plane[:-1, :-2], plane[:-1, 2:]))
    near = around(*neighbours(seen))
    if split:  # G's and B's colour difference around each pixel; R's contexts are not split
        x_near = neighbours(x[:, :len(channels)].astype(np.int64))
        flat = np.zeros((n, len(channels)), dtype=np.int64)
        flat[:, 1:] = busy(*(v[:, 1:] - v[:, :-1] for v in x_near))
    learners = np.flatnonzero(steps % learning_interval(version) == 0)
    out = np.empty((len(channels), n), dtype=np.int32)
    for c, (logit, mean, logscale) in enumerate(channels):
        ctx = context(near[:, c], seen, c, main[c][1])
        key = rank * per_channel + (2 * ctx + flat[:, c] if split else ctx)
        sums = np.zeros((slots, CANDIDATES.size), dtype=np.int64)
        for a in range(0, learners.size, chunk):
            part = learners[a:a + chunk]
            cost = candidate_costs(mixture, logit[part], mean[part], logscale[part], x[part, c])
            # float64 bincount sums are exact here: integers far below 2^53
            sums += np.stack([np.bincount(key[part], cost[:, j], slots) for j in range(CANDIDATES.size)],
                             1).astype(np.int64)
        sums = sums.reshape(-1, per_channel, CANDIDATES.size)
        before = np.cumsum(sums, 0) - sums
        out[c] = CANDIDATES[before.argmin(2).reshape(-1)[key]]
    return out
