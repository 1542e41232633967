"""Forward adaptation: per-stream offsets that fit the model's distributions to one image.

The encoder sees a whole tile (or band) before coding it, so it can measure how the model's
predictions miss on this image and say so in a few bytes at the start of the tile's stream. From
format version 6, an offset to each of the head's parameters (every component's logit, mean,
log-scale and colour coefficient, per channel: as if the network's last bias were retrained on
the tile), fitted by gradient descent on the mixture's float loss; from version 8, together with
a gain for each of the features the head reads (as if the head's weights were retrained on the
tile, one factor per input feature: ``network.gained``). Then, per channel, an offset
added to every log-scale (wider or narrower distributions) and one added to every conditioned
mean (a bias), and offsets to the three colour coefficients that condition G on R and B on R
and G, all on the model's integer grids, chosen by exact code lengths. The decoder only applies
them, so they cost no exactness (DESIGN C1): the offsets are data, not a computation to repeat.
"""
from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from .coder import StreamDecoder, StreamEncoder
from .coupling import FrozenCoupling
from .errors import CorruptError, InputError
from .mixture import clamp_head, mixture_nll, param_groups
from .network import GAIN_UNIT, IntegerPixelCNN, Trunk

#: Largest |offset|: log-scale grid units (1/16 of a natural-log unit), mean grid units (1/16
#: of a pixel level) and colour-coefficient grid units (1/64).
MAX_SCALE = 32
MAX_MEAN = 32
MAX_COEF = 32
#: Largest |offset| to one head parameter (its group's grid units; an int8 each).
MAX_HEAD = 127
#: The first format version whose prefixes carry head offsets, one signed byte per parameter.
HEAD_VERSION = 6
#: The first format version whose prefixes carry feature gains, one signed byte per feature.
GAIN_VERSION = 8
#: The first format version whose prefixes are range coded, as the stream's first symbols,
#: with the fixed priors (``prefix_masses``), rather than stored as bytes.
CODED_VERSION = 9
#: The stream prefix from the format version that introduced each layout on: scale R G B, mean
#: R G B, then zero bytes (from version 2), or coefficient G←R, B←R, B←G and zero bytes (from
#: version 4). Version 1 streams have none.
_PREFIX = {2: struct.Struct("<6b2x"), 4: struct.Struct("<9b3x")}
_LIMITS = (MAX_SCALE,) * 3 + (MAX_MEAN,) * 3 + (MAX_COEF,) * 3


@dataclass(frozen=True)
class Prior:
    """The fixed distribution a coded prefix gives one kind of offset: a two-sided geometric
    (a discretised Laplace) around ``centre`` whose masses fall by ``decay``/256 a step, floored
    at ``FLOOR``, over the offsets the kind allows, with ``spike`` more mass at the lowest one
    (a feature gain clamped at 0). Integer arithmetic only, so every machine codes with the same
    masses (DESIGN C1)."""

    centre: int
    decay: int
    lo: int
    hi: int
    spike: int = 0

    TOP = 1 << 16
    FLOOR = 1 << 7

    def masses(self) -> np.ndarray:
        """(256,) integer masses of the byte values −128…127 (index value + 128); 1 for those the
        kind does not allow, so that, as for pixels, every symbol the coder sees has a mass."""
        fall = [self.TOP]
        for _ in range(255):
            fall.append(fall[-1] * self.decay // 256)
        out = np.ones(256, dtype=np.int64)
        for v in range(self.lo, self.hi + 1):
            out[v + 128] = fall[abs(v - self.centre)] + self.FLOOR
        out[self.lo + 128] += self.spike
        return out


#: The priors of a coded prefix (format version 9), by kind of offset: the per-channel scale,
#: mean and colour-coefficient offsets (``ROW_PRIORS``, in ``Offsets.as_row``'s order), the head
#: offsets by parameter group (``HEAD_PRIORS``) and the feature gains (``GAIN_PRIOR``). Fitted
#: once to the prefixes pxc-f wrote for four training photos (005, 012, 019, 027; scratch), they
#: code the held-out photos' 148-byte prefixes in about 108 bytes; a model's prefixes that fit
#: them less well only cost more bits, never exactness.
ROW_PRIORS = (Prior(0, 35, -MAX_SCALE, MAX_SCALE),) * 3 + (Prior(0, 94, -MAX_MEAN, MAX_MEAN),) * 3 \
    + (Prior(0, 94, -MAX_COEF, MAX_COEF),) * 3
HEAD_PRIORS = {"logit": Prior(0, 226, -MAX_HEAD, MAX_HEAD), "mean": Prior(0, 226, -MAX_HEAD, MAX_HEAD),
               "logscale": Prior(1, 217, -MAX_HEAD, MAX_HEAD), "coef": Prior(-1, 226, -MAX_HEAD, MAX_HEAD),
               "blend": Prior(0, 235, -MAX_HEAD, MAX_HEAD)}
GAIN_PRIOR = Prior(-11, 246, -GAIN_UNIT, GAIN_UNIT - 1, spike=1 << 17)


@functools.lru_cache(maxsize=8)
def prefix_masses(groups: tuple[str, ...], components: int, features: int) -> np.ndarray:
    """(9 + 3·K·len(groups) + features, 256) integer masses of a coded prefix's values (the
    per-channel row, the head offsets, the gains), for a model of those head ``groups`` and K
    components; computed once per model shape (read-only: it is shared)."""
    priors = ROW_PRIORS + tuple(HEAD_PRIORS[g] for g in groups for _ in range(3 * components)) \
        + (GAIN_PRIOR,) * features
    table = {prior: prior.masses() for prior in set(priors)}
    out = np.stack([table[prior] for prior in priors])
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Effort:
    """How hard the encoder works at a tile's offsets: the Adam steps of the head offsets' and
    feature gains' fit and their sizes in grid units and gain units, the tile's pixels (evenly
    spaced; 0: all of them) the fit learns from, ``batch`` of them a step, and how many of the
    last steps' offsets it averages; then the pixels the exact per-channel search measures on.
    More effort, shorter files and slower encoding; decoding is the same work (offsets are data,
    whichever way they were found)."""

    steps: int
    rate: float
    gain_rate: float
    sample: int
    batch: int
    average: int
    search: int


#: The encoder's effort levels (``pxc compress --effort``), measured on tiles of 128 × 384 of the
#: held-out photos (scratch, 2026-12-03: as they are and with halved chroma, exact ideal bits
#: with prefixes and learning). Level 1 fits the same 4,096 pixels every step. Level 2 learns
#: from the whole tile, a different 2,048 pixels each step, and averages the last steps'
#: offsets against the small batches' noise: with 80 steps, 20 averaged and an 8,192-pixel
#: search, 0.47 % and 0.89 % fewer bits for about 1 s a tile on one core instead of 0.5 s,
#: better than fitting 16,384 pixels with 40 full-batch steps (the level 2 before, four times as
#: slow); 120 steps, 30 averaged and a 16,384-pixel search took 0.03–0.06 % more off in two
#: runs, for about 1.4 s a tile. Larger batches took nothing more off.
#: Gains move in steps four times the offsets' (of ×0.5, 1, 2, 4 and 8, ×4 fitted best).
EFFORTS = {1: Effort(24, 2.0, 8.0, sample=4096, batch=4096, average=1, search=4096),
           2: Effort(120, 1.5, 6.0, sample=0, batch=2048, average=30, search=16384)}
DEFAULT_EFFORT = 2


def effort_settings(effort: int) -> Effort:
    """The settings of an effort level; ``InputError`` for a level there is none of."""
    if effort not in EFFORTS:
        raise InputError(f"effort must be one of {sorted(EFFORTS)}, not {effort!r}")
    return EFFORTS[effort]


@dataclass
class Offsets:
    """One tile's offsets: scale and mean per channel R, G, B (grey files use only R), the
    colour coefficients G←R, B←R, B←G, one per head parameter (none before version 6) and a
    gain per feature the head reads (none before version 8)."""

    scale: list[int] = field(default_factory=lambda: [0, 0, 0])
    mean: list[int] = field(default_factory=lambda: [0, 0, 0])
    coef: list[int] = field(default_factory=lambda: [0, 0, 0])
    head: tuple[int, ...] = ()
    gain: tuple[int, ...] = ()

    def write(self, enc: StreamEncoder, groups: tuple[str, ...], components: int, features: int) -> None:
        """Code the offsets as the first symbols of a tile's stream (format version 9 on), for a
        model of head ``groups``, K ``components`` and ``features`` features (``prefix_masses``)."""
        values = np.concatenate([self.as_row(), self.head_row(3 * components * len(groups)),
                                 self.gain_row(features)])
        enc.encode(values + 128, prefix_masses(groups, components, features))

    @classmethod
    def read(cls, dec: StreamDecoder, groups: tuple[str, ...], components: int, features: int) -> "Offsets":
        """The offsets ``write`` coded at the start of a stream; impossible ones are corrupt."""
        size = 3 * components * len(groups)
        values = [int(v) - 128 for v in dec.decode(prefix_masses(groups, components, features))]
        row, head, gain = values[:9], tuple(values[9:9 + size]), tuple(values[9 + size:])
        if not _possible(row, head, gain):
            raise CorruptError(f"stream has impossible adaptation offsets {values}")
        return cls(row[:3], row[3:6], row[6:], head, gain)

    @classmethod
    def unpack(cls, stream: bytes, version: int, head_size: int, features: int) -> tuple["Offsets", bytes]:
        """A stream's offsets and the coder's words after them, as format ``version`` (up to 8:
        bytes before the words) wrote them for a model of ``head_size`` head parameters reading
        ``features`` features (version 1 streams have none: all zero); impossible ones are corrupt."""
        since = [v for v in _PREFIX if v <= version]
        if not since:
            return cls(), stream
        layout = _PREFIX[max(since)]
        heads = head_size if version >= HEAD_VERSION else 0
        size = layout.size + heads + (features if version >= GAIN_VERSION else 0)
        if len(stream) < size:
            raise CorruptError("stream too short for its adaptation offsets")
        values = list(layout.unpack_from(stream))
        padding = stream[len(values):layout.size]
        tail = struct.unpack_from(f"<{size - layout.size}b", stream, layout.size)
        head, gain = tail[:heads], tail[heads:]
        if any(padding) or not _possible(values, head, gain):
            raise CorruptError(f"stream has impossible adaptation offsets {stream[:size].hex()}")
        values += [0] * (9 - len(values))
        return cls(values[:3], values[3:6], values[6:], head, gain), stream[size:]

    def as_row(self) -> list[int]:
        """(scale R, G, B, mean R, G, B, coefficient G←R, B←R, B←G), the decoder's per-stream row."""
        return self.scale + self.mean + self.coef

    def head_row(self, size: int) -> np.ndarray:
        """The head offsets (size,) int32, zeros where the stream has none."""
        return np.array(self.head or (0,) * size, dtype=np.int32)

    def gain_row(self, size: int) -> np.ndarray:
        """The feature gains (size,) int32, zeros where the stream has none."""
        return np.array(self.gain or (0,) * size, dtype=np.int32)

    def gains(self) -> torch.Tensor | None:
        """The feature gains (C,) float32 for ``IntegerPixelCNN.head_params``; None where the
        stream has none (the same parameters as gains of 0, for less work)."""
        return torch.tensor(self.gain, dtype=torch.float32) if any(self.gain) else None


def _possible(row: list[int], head: tuple[int, ...], gain: tuple[int, ...]) -> bool:
    """Whether offsets are within what the encoder writes (``_LIMITS``, ``MAX_HEAD``, gains)."""
    return all(abs(v) <= top for v, top in zip(row, _LIMITS)) and -MAX_HEAD - 1 not in head \
        and all(-GAIN_UNIT <= k < GAIN_UNIT for k in gain)


def open_streams(streams: list[bytes], version: int, groups: tuple[str, ...], components: int,
                 features: int) -> tuple[list[Offsets], list[StreamDecoder]]:
    """Each tile stream's offsets, as format ``version`` wrote them for a model of head
    ``groups``, K ``components`` and ``features`` features, and its decoder, at the first pixel."""
    if version >= CODED_VERSION:
        decoders = [StreamDecoder(s) for s in streams]
        return [Offsets.read(d, groups, components, features) for d in decoders], decoders
    split = [Offsets.unpack(s, version, 3 * components * len(groups), features) for s in streams]
    return [o for o, _ in split], [StreamDecoder(rest) for _, rest in split]


def choose(net: IntegerPixelCNN, trunk: Trunk, pixels: torch.Tensor, channels: int,
           predicted: torch.Tensor | None = None, fit: Effort = EFFORTS[DEFAULT_EFFORT],
           around: np.ndarray | None = None) -> Offsets:
    """The offsets that fit a band's pixels, from what the network's head reads of them
    (``trunk``): first the head offsets and feature gains (``fit_head``, on ``fit.sample`` of
    them), then, on the parameters they give, the per-channel offsets that minimise the exact
    code length of ``fit.search`` of them (``predicted``: the pixels' classical predictions, for
    a model that blends towards them; ``around``: the neighbour net's moves (n, 3, 3, K), for a
    model with one: they do not depend on the offsets).

    Channel by channel (a channel's mean depends on earlier channels' values and coefficients,
    not on their scale or mean offsets), coordinate descent: first the channel's own colour
    coefficients (G←R for G; B←R, B←G, B←R again for B), then its scale, mean and scale again,
    each a coarse-to-fine search (steps 8, 4, 2, 1) over exact integer code lengths that cost K
    table lookups per symbol (``IntegerMixture.code_lengths``). The sample is small, so all of
    it runs on the host whatever the model's device.
    """
    def evenly(n: int) -> slice:
        return slice(None, None, max(1, pixels.shape[0] // n) if n else 1)

    at = evenly(fit.sample)
    head, gain = fit_head(net, Trunk(trunk.features[at], trunk.skip[at]), pixels[at].cpu(), channels,
                          None if predicted is None else predicted[at].cpu(), fit,
                          None if around is None else around[at])
    at = evenly(fit.search)
    near = None if around is None else around[at]
    sample = Trunk(trunk.features[at], trunk.skip[at])
    x = pixels[at].to(torch.int32).cpu()
    guess = None if predicted is None else predicted[at].cpu()
    mixture = net.mixture
    out = Offsets(head=head, gain=gain)
    params = net.head_params(sample, out.gains()).cpu()
    p = mixture.moved_params(params.numpy(), out.head_row(params.shape[1]))
    x = x.numpy()
    guess = None if guess is None else guess.numpy()
    own_coefs = {1: [0], 2: [1, 2, 1]} if channels == 3 else {}
    seen: list[np.ndarray] = []  # what each searched channel told, its offsets chosen
    for c in range(channels):
        logit = mixture.channel(p, c, x, predicted=guess, before=seen, around=near)[0]
        bits = mixture.code_lengths(logit, x[:, c])
        moves = mixture.moves(c, seen, near)

        def coef_cost(j: int, value: int) -> float:
            coef = out.coef.copy()
            coef[j] = value
            return float(bits(*mixture.conditioned(p, c, x, coef_offset=coef, predicted=guess, moves=moves)).sum())

        for j in own_coefs.get(c, []):
            out.coef[j] = _search(lambda v: coef_cost(j, v), MAX_COEF)
        mean0, scale0 = mixture.conditioned(p, c, x, coef_offset=out.coef, predicted=guess, moves=moves)

        def cost(scale: int, mean: int) -> float:
            return float(bits(*mixture.shift(mean0, scale0, scale, mean)).sum())

        scale = _search(lambda s: cost(s, 0), MAX_SCALE)
        mean = _search(lambda m: cost(scale, m), MAX_MEAN)
        out.scale[c] = _search(lambda s: cost(s, mean), MAX_SCALE)
        out.mean[c] = mean
        if mixture.tells and c + 1 < channels:
            seen.append(mixture.told(logit, *mixture.shift(mean0, scale0, out.scale[c], mean), x[:, c]))
    return out


def fit_head(net: IntegerPixelCNN, trunk: Trunk, pixels: torch.Tensor, channels: int,
             predicted: torch.Tensor | None, fit: Effort, around: np.ndarray | None = None
             ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Integer offsets (P,) to the head parameters and gains (C,) of the features the head reads
    (``network.gained``), from the ``trunk`` of pixels (n, 3), that lower the code length of
    their first ``channels`` channels: ``fit.steps`` Adam steps on the training loss (the float
    mixture of the integer parameters with the gains' effect on them taken as linear, with the
    pixels' classical predictions (n, 3) where the model blends towards them and the neighbour
    net's moves (n, 3, 3, K) where it has one), each on
    ``fit.batch`` of the pixels (``_batches``), the last ``fit.average`` steps' offsets averaged,
    rounded.

    On one CPU thread, so the offsets, and the file's bytes, do not depend on the thread count or
    the model's device (float32: a third of float64's time, for the same offsets but a few).
    """
    head = net.gemms["head"].layer
    order, batches = _batches(pixels.shape[0], fit.batch, fit.steps)
    with _one_thread():
        # pixels in batch order, parameters first: each step's batch is one contiguous run of
        # every tensor, a third faster than a strided one
        features = trunk.features[order]
        p = net.head_params(Trunk(features, trunk.skip[order])).cpu().to(torch.float32)
        p = p.T.contiguous()[None, :, :, None]
        # A gain of k moves the parameters by (h · k / GAIN_UNIT) @ W in grid units, W the head's
        # weights times their requantisation multipliers.
        w = (head.weight.cpu().double() * head.mult.cpu() / 2.0 ** head.shift.cpu().double() / GAIN_UNIT).float()
        h = features.cpu().to(torch.float32)
        x = pixels[order].to(torch.uint8).T.contiguous()[None, :, :, None]
        guess = None if predicted is None else predicted[order][None, :, None]
        groups = param_groups(p.shape[1], net.cfg.components)
        posterior = None if net.mixture.posterior is None else torch.from_numpy(net.mixture.posterior).float()
        coupling = None if net.mixture.coupling is None else FrozenCoupling(net.mixture.coupling)
        near = None if around is None else torch.from_numpy(around[order.numpy()]).float().permute(1, 2, 3, 0)[
            None, ..., None]  # (1, 3, 3, K, n, 1), like the parameters
        d = torch.zeros(p.shape[1], requires_grad=True)
        k = torch.zeros(h.shape[1], requires_grad=True)
        steps = _Adam(d, fit.rate), _Adam(k, fit.gain_rate)
        total_d, total_k = torch.zeros_like(d), torch.zeros_like(k)
        for t, at in enumerate(batches):
            moved = p[:, :, at] + d.view(1, -1, 1, 1) + ((h[at] * k) @ w).T[None, :, :, None]
            loss = mixture_nll(clamp_head(moved, groups), x[:, :, at], net.cfg.components,
                               None if guess is None else guess[:, at], posterior, coupling,
                               None if near is None else near[:, :, :, :, at])[:, :channels].mean()
            for step, grad in zip(steps, torch.autograd.grad(loss, (d, k))):
                step(grad)
            if t >= fit.steps - fit.average:
                total_d += d.detach()
                total_k += k.detach()
        d, k = total_d / fit.average, total_k / fit.average
    return (tuple(int(v) for v in d.round().clamp(-MAX_HEAD, MAX_HEAD)),
            tuple(int(v) for v in k.round().clamp(-GAIN_UNIT, GAIN_UNIT - 1)))


#: The golden ratio's fractional part: offsets t · φ mod 1 spread evenly over [0, 1) for any t.
_GOLDEN = (math.sqrt(5) - 1) / 2


def _batches(n: int, batch: int, steps: int) -> tuple[torch.Tensor, list[slice]]:
    """An order of ``range(n)`` and the runs of it that ``steps`` steps learn from: the order
    puts every stride-th item from each offset together (``n // batch`` runs of about ``batch``
    evenly spaced items), and step t takes the run at the golden ratio's fraction t · φ of the
    stride, so that consecutive steps see subsets far apart and all of them soon."""
    stride = max(1, n // batch)
    order = torch.cat([torch.arange(o, n, stride) for o in range(stride)])
    ends = np.cumsum([len(range(o, n, stride)) for o in range(stride)])
    starts = np.concatenate([[0], ends[:-1]])
    runs = [int(t * _GOLDEN % 1.0 * stride) for t in range(steps)]
    return order, [slice(int(starts[o]), int(ends[o])) for o in runs]


class _Adam:
    """Adam's update of one tensor (torch.optim.Adam's defaults and arithmetic), without
    torch.optim, whose first step costs ~1 s of lazy imports in every forked worker."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, param: torch.Tensor, rate: float):
        self.param, self.rate, self.t = param, rate, 0
        self.m, self.v = torch.zeros_like(param), torch.zeros_like(param)

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor) -> None:
        (b1, b2), self.t = self.BETAS, self.t + 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.EPS)
        self.param.addcdiv_(self.m, denom, value=-self.rate / (1 - b1 ** self.t))


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _search(cost: Callable[[int], float], limit: int) -> int:
    """argmin of ``cost`` over the integers in ±limit: a grid of step 8, then steps 4, 2, 1."""
    seen: dict[int, float] = {}

    def f(v: int) -> float:
        if abs(v) > limit:
            return math.inf
        if v not in seen:
            seen[v] = cost(v)
        return seen[v]

    best = min(range(-limit, limit + 1, 8), key=f)
    for step in (4, 2, 1):
        best = min((best - step, best, best + step), key=f)
    return best
