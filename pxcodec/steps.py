"""The decoder's mixture work for the pixels of one wavefront step, as compiled loops (numba).

Per channel, one pass over the step's pixels conditions the channel's parameters on the
channels already decoded (``IntegerMixture.channel``'s integers), moves them by their streams'
offsets (``adapt``), picks the log-scale offset learned so far in each pixel's context (from
format version 5, ``online``) and builds its 256-way PMF (``IntegerMixture.pmf``'s integers).
After the coder, one pass records the symbols' surprise and, at the step's end, one adds what
the step teaches to the learned sums. A step has a few hundred pixels, on which numpy's dozens
of calls per channel cost more in overhead than in arithmetic; here a channel is one call.
"""
from __future__ import annotations

import numba
import numpy as np

from . import neighbours, online
from .mixture import RANGE, IntegerMixture, blend_target, clamped, conditioned_mean, pixel_pmf
from .online import around, busy, candidates_cost, context_of, surprise_of

_LOGIT_LO, _LOGIT_HI = RANGE["logit"]
_MEAN_LO, _MEAN_HI = RANGE["mean"]
_LS_LO, _LS_HI = RANGE["logscale"]


class StepMixture:
    """A wavefront's lanes' mixture state: the parameters of the step being decoded; for a
    model with a neighbour net, what each pixel of the last three rows of each lane told (the
    rows a step reads, ``neighbours``); and, for streams of format ``version`` that learn
    (``online.VERSION`` on), each stream's summed candidate costs and the surprise (and, from
    version 7, the values) of the same rows."""

    def __init__(self, mixture: IntegerMixture, streams: int, lanes: int, width: int, channels: int,
                 stream_rows: int, reach_right: int, version: int):
        self.learns = version >= online.VERSION
        if self.learns and reach_right < 1:
            raise ValueError("backward adaptation needs reach_right ≥ 1: NE must be decoded before")
        self.mixture, self.channels = mixture, channels
        self.per_channel = online.contexts_per_channel(version)
        self.split = self.per_channel > online.CONTEXTS
        self.candidates = online.CANDIDATES
        self.sums = np.zeros((channels, streams * self.per_channel, self.candidates.size), dtype=np.int64)
        self.padded = width + 4  # two zero columns on either side
        self.rows = np.zeros((lanes * 3 * self.padded, channels), dtype=np.int32)  # rows y % 3 of each lane
        self.values = np.zeros_like(self.rows)  # the decoded subpixels, in the same places (version 7)
        self.stream_rows, self.step_rows = stream_rows, reach_right + 1
        self.interval = online.learning_interval(version)
        self.unmoved = np.zeros((0, 3, mixture.k), dtype=np.int64)
        if mixture.neighbours is not None:  # what each cached pixel's channels told, unmoved
            self.told_rows = np.zeros((lanes * 3 * self.padded, 3, 2 * mixture.k + 1), dtype=np.int64)
            self.sides = np.array(neighbours.sides(mixture.neighbours.reach), dtype=np.int64)  # (S, 2): dy, dx

    def begin(self, lanes: np.ndarray, ys: np.ndarray, xs: np.ndarray, streams: np.ndarray, params: np.ndarray,
              offsets: np.ndarray, predicted: np.ndarray | None, unadapted: np.ndarray | None = None) -> None:
        """Start a step: its pixels (ys, xs), rows counted within their ``lanes``, their
        ``streams``, head parameters (n, P) int32 (the stream's head offsets applied), the
        streams' offsets (n, 9: ``adapt.Offsets.as_row``), for a model that blends,
        ``predictor.predictions`` (n, 3), and for one with a neighbour net, the head parameters
        as the network gave them (``unadapted``, (n, P)). Their neighbours' surprise, and what
        they told, is read once for every channel."""
        n, k = params.shape[0], self.mixture.k
        self.params, self.offsets, self.unadapted = params, offsets, unadapted
        self.blend = predicted is not None
        self.predicted = predicted if self.blend else np.zeros((1, 3), dtype=np.int32)
        self.seen = np.zeros((n, self.channels), dtype=np.int32)
        self.logit, self.mean, self.logscale = (np.empty((self.channels, n, k), dtype=np.int32) for _ in range(3))
        self.main = np.empty((self.channels, n, 2), dtype=np.int64)
        if self.unmoved.shape[0] < n:  # the moves of a channel that follows none, reused step to step
            self.unmoved = np.zeros((n, 3, k), dtype=np.int64)
        self.told: list[np.ndarray] = []  # what each decoded channel told (``IntegerMixture.told``)
        self.ctx = np.empty((self.channels, n), dtype=np.int64)
        self.near = np.empty((n, self.channels), dtype=np.int64)
        self.busy = np.zeros((n, self.channels), dtype=np.int64)
        self.learning = np.empty(n, dtype=np.bool_)
        self.slots = streams * self.per_channel
        # each pixel's place in its lane's cache rows, its N's, and whether it has rows above in its stream
        self.here = (lanes * 3 + ys % 3) * self.padded + xs + 2
        up = (lanes * 3 + (ys + 2) % 3) * self.padded + xs + 2
        inside = ys % self.stream_rows > 0  # a stream sees nothing above its first row
        self.around = None
        if self.mixture.neighbours is not None:
            self.around = self.mixture.neighbours.moves(self._sides(lanes, ys, xs))
        if self.learns:
            _begin(ys, xs, self.here, up, inside, self.rows, self.values, self.stream_rows, self.step_rows,
                   self.interval, self.split, self.near, self.busy, self.learning)

    def _sides(self, lanes: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """What each pixel's neighbours told (n, sides, 3, 2K + 1) (``neighbours.sides``), zeros
        above its stream's first rows (``_gather_sides``)."""
        out = np.empty((ys.size, len(self.sides), *self.told_rows.shape[1:]), dtype=np.int64)
        _gather_sides(self.told_rows, lanes, ys, xs, self.padded, self.stream_rows, self.sides, out)
        return out

    def pmf(self, c: int, known: np.ndarray) -> np.ndarray:
        """The (n, 256) integer PMFs (float64, what the coder takes) of channel ``c`` of the
        step's pixels, whose channels before ``c`` are decoded into ``known`` (n, 3) int32."""
        m = self.mixture
        out = np.empty((self.params.shape[0], 256), dtype=np.float64)
        moves = m.moves(c, self.told, self.around)
        moves = self.unmoved[:self.params.shape[0]] if moves is None else moves
        _channel(c, self.params, m.k, self.blend, known, self.offsets, moves, self.predicted, self.learns, self.split,
                 self.near, self.busy, self.slots, self.sums, self.seen, self.candidates, m.host_cdf, m.host_exp,
                 m.cols, self.logit, self.mean, self.logscale, self.main, self.ctx, out)
        return out

    def see(self, c: int, x: np.ndarray) -> None:
        """Record the step's decoded symbols x (n,) int32 of channel ``c`` (the PMFs of the last
        ``pmf``): for a model whose channels follow the ones before, what it ``told``; for a
        stream that learns, their surprise and, from version 7, the symbols, for later contexts."""
        m = self.mixture
        if m.tells and c + 1 < self.channels:
            self.told.append(m.told(self.logit[c], self.mean[c], self.logscale[c], x))
        if self.learns:
            _see(c, x, self.main, self.here, self.rows, self.values, self.seen, m.inv_scale, self.split)

    def end(self, known: np.ndarray) -> None:
        """End a step, its pixels ``known`` (n, 3) decoded (grey ones as R = G = B): for a model
        with a neighbour net, cache what their channels told; add the candidate costs of the
        subpixels whose step within their stream is a learning one to their streams' sums."""
        if self.mixture.neighbours is not None:
            self.told_rows[self.here] = self.mixture.unmoved_told(self.unadapted, known,
                                                                self.predicted if self.blend else None)
        if self.learns:
            m = self.mixture
            _learn(self.learning, known, self.logit, self.mean, self.logscale, self.ctx, self.slots, self.sums,
                   self.candidates, m.host_cdf, m.host_exp, m.cols)


@numba.njit(cache=True, nogil=True)
def _gather_sides(rows, lanes, ys, xs, padded, stream_rows, sides, out):
    """Into ``out`` (n, sides, ...), each pixel's neighbours' (``sides`` (S, 2): dy, dx) entries
    of the told ``rows`` (three rows per lane, ``padded`` wide), zeros above its stream's first
    rows. Three rows suffice: each row lags the one above by reach_right + 1 columns, so row
    y + 1, which shares row y − 2's places, has written only places left of those read there
    (x − 1 … x + 1, and at reach 3, where reach_right is 2, x − 2 … x + 2). Compiled and without
    the GIL, as the decoder's workers run it side by side."""
    for i in range(ys.size):
        row = ys[i] % stream_rows
        for s in range(sides.shape[0]):
            dy, dx = sides[s, 0], sides[s, 1]
            if row < -dy:
                out[i, s] = 0
            else:
                out[i, s] = rows[(lanes[i] * 3 + (ys[i] + dy) % 3) * padded + xs[i] + 2 + dx]


@numba.njit(cache=True, nogil=True)
def _north(cache, up, c, inside):
    """N, NW and NE of channel ``c`` in a cache of the last rows (``up``: N's place), 0 above a
    stream's first row (not ``inside``)."""
    if not inside:
        return np.int64(0), np.int64(0), np.int64(0)
    return np.int64(cache[up, c]), np.int64(cache[up - 1, c]), np.int64(cache[up + 1, c])


@numba.njit(cache=True, nogil=True)
def _begin(ys, xs, here, up, inside, rows, values, stream_rows, step_rows, interval, split, near, flat, learning):
    """Each pixel's neighbours' summed surprise ``near`` (n, channels) (``online.around``), G's
    and B's colour-difference activity ``flat`` (``online.busy``) and whether it learns (every
    ``interval``-th step of its stream, ``online.learning_interval``), from its cache place
    ``here``, its N's ``up`` and whether its stream has rows above it (``inside``)."""
    for i in range(here.size):
        at = here[i]
        for c in range(rows.shape[1]):
            near[i, c] = around(rows[at - 1, c], *_north(rows, up[i], c, inside[i]))
            if split and c:
                west = values[at - 1, c] - values[at - 1, c - 1]
                n, nw, ne = _north(values, up[i], c, inside[i])
                pn, pnw, pne = _north(values, up[i], c - 1, inside[i])
                flat[i, c] = busy(west, n - pn, nw - pnw, ne - pne)
        learning[i] = (xs[i] + step_rows * (ys[i] % stream_rows)) % interval == 0


@numba.njit(cache=True, nogil=True)
def _channel(c, params, k, blend, known, offsets, moves, predicted, learns, split, near, flat, slots, sums, seen,
             candidates, cdf, exp, cols, logit, mean, logscale, main, ctx, out):
    """Channel ``c``'s parameters (n, K) of every pixel into ``logit``, ``mean``, ``logscale``
    [c] (``IntegerMixture.channel``, the streams' offsets and the ``moves`` (n, 3, K) of its
    logits, means and log-scales from ``IntegerMixture.moves`` applied), its dominant component's
    mean and log-scale into ``main[c]``, its context into ``ctx[c]`` and its PMF, the learned
    offset applied, into ``out``."""
    edges = np.empty(257, dtype=np.int32)
    for i in range(params.shape[0]):
        p, d = params[i], offsets[i]
        target = blend_target(known, predicted, i, c, blend)
        for j in range(k):
            m = conditioned_mean(params, i, c, j, k, known[i, 0], known[i, 1], d[6], d[7], d[8], blend, target)
            logit[c, i, j] = clamped(p[c * k + j] + moves[i, 0, j], _LOGIT_LO, _LOGIT_HI)
            moved = clamped(m + moves[i, 1, j], _MEAN_LO, _MEAN_HI)
            mean[c, i, j] = clamped(moved + d[3 + c], _MEAN_LO, _MEAN_HI)
            moved = clamped(p[(6 + c) * k + j] + moves[i, 2, j], _LS_LO, _LS_HI)
            logscale[c, i, j] = clamped(moved + d[c], _LS_LO, _LS_HI)
        shift = 0
        if learns:
            top = logit[c, i].argmax()  # the dominant component (the first on ties)
            main[c, i, 0], main[c, i, 1] = mean[c, i, top], logscale[c, i, top]
            cx = context_of(near[i, c], seen[i, :c].sum(), c, logscale[c, i, top])
            if split:
                cx = 2 * cx + flat[i, c]
            ctx[c, i] = cx
            shift = candidates[sums[c, slots[i] + cx].argmin()]  # the cheapest so far (the first on ties)
        pixel_pmf(logit[c, i], mean[c, i], logscale[c, i], shift, cdf, exp, cols, edges, out[i])


@numba.njit(cache=True, nogil=True)
def _see(c, x, main, here, rows, values, seen, inv_scale, split):
    """The surprise (``online.surprise_of``) of channel ``c``'s symbols x into ``seen`` and the
    surprise cache, and (``split``) the symbols into the value cache."""
    for i in range(x.size):
        s = surprise_of(main[c, i, 0], main[c, i, 1], np.int64(x[i]), inv_scale)
        seen[i, c] = s
        rows[here[i], c] = s
        if split:
            values[here[i], c] = x[i]


@numba.njit(cache=True, nogil=True)
def _learn(learning, known, logit, mean, logscale, ctx, slots, sums, candidates, cdf, exp, cols):
    """Every candidate's cost (``online.candidates_cost``) of each learning pixel's symbols, added
    to its stream's sums in its context, channel by channel."""
    w = np.empty(logit.shape[2], dtype=np.int64)
    for i in range(learning.size):
        if learning[i]:
            for c in range(sums.shape[0]):
                candidates_cost(logit[c, i], mean[c, i], logscale[c, i], known[i, c], candidates, cdf, exp, cols, w,
                                sums[c, slots[i] + ctx[c, i]])
