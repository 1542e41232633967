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
"""
from __future__ import annotations

import numpy as np

from .mixture import RANGE, IntegerMixture

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
#: Streams learn from the subpixels of every LEARN_EVERY-th step of their wavefront only (the
#: step counted within the stream): a quarter of the work, for almost all of the gain.
LEARN_EVERY = 4
#: Largest surprise recorded (1/16 scale units); beyond it every pixel is equally surprising.
MAX_SURPRISE = 4095
#: Fraction bits of the integer code lengths, and their table over the mantissa's top bits.
COST_BITS, _MANTISSA_BITS = 12, 10


def _log2_table() -> np.ndarray:
    """2^COST_BITS · log2(1 + (i + ½)/2^10) for each mantissa bucket i, rounded down, by the
    bit-by-bit binary logarithm in 62-bit fixed point: integer operations only, so the same table
    on every machine."""
    one = 1 << 62
    out = []
    for i in range(1 << _MANTISSA_BITS):
        z, y = one + ((2 * i + 1) << (61 - _MANTISSA_BITS)), 0
        for _ in range(COST_BITS):
            z, y = (z * z) >> 62, y << 1
            if z >= 2 * one:
                z, y = z >> 1, y | 1
        out.append(y)
    return np.array(out, dtype=np.int64)


_LOG2 = _log2_table()


def code_costs(mass: np.ndarray) -> np.ndarray:
    """−log2 of integer masses (< 2^53), in 1/2^COST_BITS bits up to a constant, int64: exact
    exponent from ``frexp`` and the mantissa's top bits through an integer table. The PMF's
    total does not depend on the candidate, so it is left out."""
    m, e = np.frexp(mass.astype(np.float64))
    bucket = (m * (2 << _MANTISSA_BITS)).astype(np.int64) - (1 << _MANTISSA_BITS)
    return -((e.astype(np.int64) << COST_BITS) + _LOG2[bucket])


def dominant(logit: np.ndarray, mean: np.ndarray, logscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and log-scale (n,) of each symbol's dominant component: the largest logit, the first
    on ties."""
    pick = (np.arange(logit.shape[0]), logit.argmax(1))
    return mean[pick], logscale[pick]


def surprise(mixture: IntegerMixture, mean: np.ndarray, logscale: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|x − mean| / scale (1/16 units, capped at ``MAX_SURPRISE``) of symbols x (n,) under their
    dominant components' means and log-scales (n,), int32."""
    inv = mixture.inv_scale[logscale - RANGE["logscale"][0]]
    return np.minimum((np.abs(x * 16 - mean.astype(np.int64)) * inv) >> 16, MAX_SURPRISE).astype(np.int32)


def around(west: np.ndarray, north: np.ndarray, north_west: np.ndarray, north_east: np.ndarray) -> np.ndarray:
    """The neighbours' part of a context, W + N + (NW + NE) / 2 of their surprise (0 outside
    the stream)."""
    return west + north + ((north_west + north_east) >> 1)


def busy(west: np.ndarray, north: np.ndarray, north_west: np.ndarray, north_east: np.ndarray) -> np.ndarray:
    """Whether a colour-difference plane (a channel minus the one before it) varies around each
    subpixel, from its causal neighbours' values (0 outside the stream): 0 where flat, else 1."""
    activity = np.abs(west - north_west) + np.abs(north - north_west) + np.abs(north - north_east)
    return (activity > FLAT_MAX).astype(np.int64)


def contexts_per_channel(version: int) -> int:
    """How many contexts each channel of a stream of format ``version`` learns in."""
    return 2 * CONTEXTS if version >= SPLIT_VERSION else CONTEXTS


def context(near: np.ndarray, own: np.ndarray, channel: int, logscale: np.ndarray) -> np.ndarray:
    """Context (n,) of each subpixel of ``channel`` from its neighbours' surprise (``around``),
    its own pixel's earlier channels' (n, ≥ channel) and its dominant component's log-scale."""
    if channel:
        level = np.searchsorted(_EDGES_AFTER_R, near + 2 * own[:, :channel].sum(1), side="right")
    else:
        level = np.searchsorted(EDGES, near, side="right")
    return level * (SCALE_EDGES.size + 1) + np.searchsorted(SCALE_EDGES, logscale, side="right")


def candidate_costs(mixture: IntegerMixture, logit: np.ndarray, mean: np.ndarray, logscale: np.ndarray,
                    x: np.ndarray) -> np.ndarray:
    """Integer code length (n, len(CANDIDATES)) of each symbol x (n,) under its mixture, every
    log-scale moved by each candidate offset (``IntegerMixture.symbol_masses``)."""
    moved = mixture.shift(mean[:, None, :], logscale[:, None, :], CANDIDATES[None, :, None], 0)
    return code_costs(mixture.symbol_masses(logit, x)(*moved))


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
    learners = np.flatnonzero(steps % LEARN_EVERY == 0)
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


class Learner:
    """The decoder's side for the lanes of one wavefront: each stream's summed candidate costs,
    and the surprise (and, from version 7, the values) of the last three rows of each lane (the
    rows a step reads), for streams of format ``version``."""

    def __init__(self, streams: int, lanes: int, width: int, channels: int, stream_rows: int, reach_right: int,
                 version: int):
        if reach_right < 1:
            raise ValueError("backward adaptation needs reach_right ≥ 1: NE must be decoded before")
        self.per_channel = contexts_per_channel(version)
        self.split = self.per_channel > CONTEXTS
        self.sums = np.zeros((channels, streams * self.per_channel, CANDIDATES.size), dtype=np.int64)
        self.padded = width + 2  # a zero column on either side
        self.rows = np.zeros((lanes * 3 * self.padded, channels), dtype=np.int32)  # rows y % 3 of each lane
        self.values = np.zeros_like(self.rows)  # the decoded subpixels, in the same places (version 7)
        self.stream_rows, self.step_rows = stream_rows, reach_right + 1
        self._here = self._near = self._busy = self._slots = self._learning = np.zeros(0, dtype=np.int64)
        self._main = (self._here, self._here)

    def begin(self, lanes: np.ndarray, ys: np.ndarray, xs: np.ndarray, streams: np.ndarray) -> None:
        """Start a step: its pixels (ys, xs), rows counted within their ``lanes``, and their
        streams. Their neighbours' surprise is read once for every channel."""
        here = (lanes * 3 + ys % 3) * self.padded + xs + 1
        north = (lanes * 3 + (ys - 1) % 3) * self.padded + xs + 1
        up = (ys % self.stream_rows > 0)[:, None]  # a stream sees nothing above its first row

        def neighbours(plane: np.ndarray) -> tuple[np.ndarray, ...]:
            """W, N, NW, NE of the step's pixels in a cache of the last rows, 0 outside the stream."""
            return plane[here - 1], *(np.where(up, plane[north + dx], 0) for dx in (0, -1, 1))
        self._near = around(*neighbours(self.rows))
        if self.split:
            self._busy = np.zeros((here.size, self.rows.shape[1]), dtype=np.int64)
            self._busy[:, 1:] = busy(*(v[:, 1:] - v[:, :-1] for v in neighbours(self.values)))
        self._here, self._slots = here, streams * self.per_channel
        self._learning = np.flatnonzero((xs + self.step_rows * (ys % self.stream_rows)) % LEARN_EVERY == 0)

    def offsets(self, c: int, own: np.ndarray, params: tuple[np.ndarray, np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
        """Contexts (n,) and learned offsets (n, 1) of channel ``c`` of the step's pixels, from
        their parameters before the learned offset; ``own``: the surprise of their channels
        before ``c``."""
        self._main = dominant(*params)
        ctx = context(self._near[:, c], own, c, self._main[1])
        if self.split:
            ctx = 2 * ctx + self._busy[:, c]
        return ctx, CANDIDATES[self.sums[c, self._slots + ctx].argmin(1)][:, None]

    def see(self, mixture: IntegerMixture, c: int, x: np.ndarray) -> np.ndarray:
        """Record the surprise of the step's decoded symbols x (n,) of channel ``c`` (the
        parameters of the last ``offsets``), and the symbols, for later contexts; returns the
        surprise."""
        seen = surprise(mixture, *self._main, x)
        self.rows[self._here, c] = seen
        if self.split:
            self.values[self._here, c] = x
        return seen

    def learn(self, mixture: IntegerMixture, ctx: list[np.ndarray],
              params: list[tuple[np.ndarray, np.ndarray, np.ndarray]], x: np.ndarray) -> None:
        """End a step: add the candidate costs of its subpixels whose step within their stream is
        a learning one to their streams' sums, every channel in one batch, from each channel's
        contexts (n,) and parameters before the learned offset, and the symbols x (n, ≥ channels)."""
        learn = self._learning
        if not learn.size:
            return
        key = np.concatenate([c * self.sums.shape[1] + self._slots[learn] + ctx[c][learn] for c in range(len(params))])
        batch = (np.concatenate([p[i][learn] for p in params]) for i in range(3))
        cost = candidate_costs(mixture, *batch, np.concatenate([x[learn, c] for c in range(len(params))]))
        slots, at = np.unique(key, return_inverse=True)
        flat = (at.reshape(-1, 1) * CANDIDATES.size + np.arange(CANDIDATES.size)).reshape(-1)
        sums = np.bincount(flat, cost.reshape(-1), slots.size * CANDIDATES.size)  # exact: integers < 2^53
        self.sums.reshape(-1, CANDIDATES.size)[slots] += sums.reshape(-1, CANDIDATES.size).astype(np.int64)
