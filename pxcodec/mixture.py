"""The discretised logistic mixture head: parameter grids, the float training loss, and the
exact integer 256-way PMF the coder receives.

Each of R, G, B has its own mixture of ``K`` logistics. G's means move linearly with R's
surprise and B's with R's and G's (PixelCNN++ style), so one trunk evaluation per pixel serves
all three channels. A model with ``blend`` (``config``) also moves each component's mean a
learned fraction of the way to a classical prediction (``predictor``). Both forms share the
grids below: the float loss sees parameters rounded to exactly the integers the integer model
will use (straight-through gradients), and the integer PMF replaces ``exp``/``sigmoid`` by
tables shipped inside the weights file (DESIGN C1).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Integer arrays: ``IntegerMixture.channel`` and ``pmf`` take torch tensors or numpy arrays.
Array = Tensor | np.ndarray

from . import predictor
from .config import PARAM_GROUPS
from .errors import CertificateError

if TYPE_CHECKING:
    from .coupling import CouplingNet, IntegerCoupling
    from .neighbours import IntegerNeighbours

#: Integer units per real unit of each parameter group (``config.PARAM_GROUPS``).
GRID = {"logit": 8, "mean": 16, "logscale": 16, "coef": 64, "blend": 64}
#: Real units per unit of head output (folded into requantisation in the integer model).
GAIN = {"logit": 1.0, "mean": 128.0, "logscale": 1.0, "coef": 1.0, "blend": 8.0}
#: Clamp ranges on the integer grids; a blend runs from 0 (the network's mean) to the whole way.
RANGE = {"logit": (-1024, 1024), "mean": (-32 * 16, 288 * 16), "logscale": (-3 * 16, 6 * 16),
         "coef": (-128, 128), "blend": (0, 64)}
#: Index of the blend group, the last: heads without it have this many groups.
_BLEND = PARAM_GROUPS.index("blend")
#: Largest logit gap (grid units) that still gets weight; beyond it a component is floored.
LOGIT_GAP = 128
#: Resolution (steps per unit) and half-width (units) of the sigmoid table.
SIG_STEPS, SIG_HALF = 1024, 16
#: Fixed-point bits of the CDF, the mixture weights and the inverse scales.
CDF_BITS, WEIGHT_BITS, INV_BITS = 16, 12, 16
#: A model with ``posterior`` (``config``) moves G's logits by weights (K, K) times the log2 of
#: R's components' posterior at the decoded R, and B's by R's and G's: the weights on a grid of
#: 1/POSTERIOR_GRID, within ±POSTERIOR_MAX units; the posterior in 1/POSTERIOR_UNIT bits, no
#: lower than −POSTERIOR_FLOOR bits; their summed products onto the logit grid by
#: (acc · POSTERIOR_M) >> POSTERIOR_S, i.e. × 8 ln 2 / 2^16 (grid units of the logit per bit).
POSTERIOR_GRID, POSTERIOR_MAX, POSTERIOR_UNIT, POSTERIOR_FLOOR = 256, 2048, 256, 8
POSTERIOR_M, POSTERIOR_S = 744261118, 43
#: A told distance from a mean (``IntegerMixture.told``, 1/16 of a scale) lies within ±TOLD_MAX.
TOLD_MAX = 128
#: Each weight matrix's (target channel, source channel): G←R, B←R, B←G.
POSTERIOR_PAIRS = ((1, 0), (2, 0), (2, 1))
#: Grid units of a posterior weight per unit of the float model's parameter: Adam moves a weight
#: about half a unit a step at the learning rates that fine-tune the rest (like ``GAIN``).
POSTERIOR_GAIN = 32768.0


def make_tables() -> dict[str, np.ndarray]:
    """The lookup tables of the integer PMF; computed once at export and stored with the weights."""
    n = 2 * SIG_HALF * SIG_STEPS + 1
    t = (np.arange(n, dtype=np.float64) - SIG_HALF * SIG_STEPS) / SIG_STEPS
    sig = np.round((1 << CDF_BITS) / (1.0 + np.exp(-t))).astype(np.int64)
    gap = np.arange(LOGIT_GAP + 1, dtype=np.float64) / GRID["logit"]
    exp = np.round((1 << WEIGHT_BITS) * np.exp(-gap)).astype(np.int64)
    lo, hi = RANGE["logscale"]
    ls = np.arange(lo, hi + 1, dtype=np.float64) / GRID["logscale"]
    inv = np.round((1 << INV_BITS) * np.exp(-ls)).astype(np.int64)
    return {"sigmoid": sig, "exp": exp, "inv_scale": inv}



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
#: Bits of ``cost``'s fraction dropped to give the posterior's 1/POSTERIOR_UNIT bits.
_POSTERIOR_DOWN = COST_BITS - int(math.log2(POSTERIOR_UNIT))


@numba.njit(cache=True, nogil=True)
def cost(mass):
    """−log2 of an integer mass (< 2^53), in 1/2^COST_BITS bits up to a constant, int64: exact
    exponent from ``frexp`` and the mantissa's top bits through an integer table. What ``online`` compares
    candidates by and ``told`` weighs components by."""
    m, e = math.frexp(float(mass))
    return -((e << COST_BITS) + _LOG2[int(m * (2 << _MANTISSA_BITS)) - (1 << _MANTISSA_BITS)])

# ----------------------------------------------------------------------------- float (training)

def round_ste(x: Tensor) -> Tensor:
    """Round half up, with a straight-through gradient (quantisation-aware training)."""
    return x + (torch.floor(x + 0.5) - x).detach()


def floor_ste(x: Tensor) -> Tensor:
    return x + (torch.floor(x) - x).detach()


def param_groups(size: int, components: int) -> tuple[str, ...]:
    """The groups of a head of ``size`` parameters per pixel (``config.ModelConfig.groups``)."""
    return PARAM_GROUPS[:size // (3 * components)]


def split_groups(params: Tensor, components: int) -> dict[str, Tensor]:
    """(B, P, H, W) head output → group name → (B, 3, K, H, W)."""
    b, p, h, w = params.shape
    groups = param_groups(p, components)
    return dict(zip(groups, params.view(b, len(groups), 3, components, h, w).unbind(1)))


def conditioned_means(g: dict[str, Tensor], x: Tensor, predicted: Tensor | None = None) -> Tensor:
    """Every channel's means (B, 3, K, H, W) on their grid, from the head's groups ``g``
    (``split_groups``) and uint8-valued ``x`` (B, 3, H, W): G's moved linearly by R's surprise,
    B's by R's and G's, and (with a blend group) each the blend's way to the classical prediction
    ``predicted`` (B, H, W, 3) of x's pixels (``predictor.predictions``)."""
    xf = x.to(g["mean"].dtype).unsqueeze(2) * GRID["mean"]         # (B,3,1,H,W) on the mean grid
    m = g["mean"]
    lo, hi = RANGE["mean"]
    mr = m[:, 0]
    mg = torch.clamp(m[:, 1] + floor_ste((xf[:, 0] - mr) * g["coef"][:, 0] / GRID["coef"]), lo, hi)
    mb = torch.clamp(m[:, 2] + floor_ste(((xf[:, 0] - mr) * g["coef"][:, 1]
                                          + (xf[:, 1] - mg) * g["coef"][:, 2]) / GRID["coef"]), lo, hi)
    mean = torch.stack([mr, mg, mb], 1)
    if "blend" in g:
        known = x.permute(0, 2, 3, 1).to(torch.int32)
        target = torch.stack([predictor.target(predicted, known, c) for c in range(3)], 1)
        mean = torch.clamp(mean + floor_ste(g["blend"] * (target.unsqueeze(2) * GRID["mean"] - mean)
                                             / GRID["blend"]), lo, hi)
    return mean


def log2_posterior(logit: Tensor, log_p: Tensor) -> Tensor:
    """Each component's log2 posterior (B, K, H, W) at the value, in 1/POSTERIOR_UNIT bits
    within [−POSTERIOR_FLOOR bits, 0], from a channel's logits and its components'
    log-probabilities of the value (``_log_probs``)."""
    unit = POSTERIOR_UNIT / math.log(2)
    return torch.log_softmax(logit / GRID["logit"] + log_p, 1).mul(unit).clamp(-POSTERIOR_FLOOR * POSTERIOR_UNIT, 0)


def mixture_nll(params: Tensor, x: Tensor, components: int, predicted: Tensor | None = None,
                posterior: Tensor | None = None, coupling: "CouplingNet | None" = None,
                neighbours: Tensor | None = None) -> Tensor:
    """Negative log-likelihood in nats, (B, 3, H, W), of uint8-valued ``x`` (B, 3, H, W).

    ``params`` are head outputs already on their integer grids (float tensors holding integers);
    with a blend group, ``predicted`` (B, H, W, 3) holds ``predictor.predictions`` of x's pixels.
    Channel by channel, as the decoder learns them: a model with ``posterior`` weights (3, K, K)
    on their grid (``POSTERIOR_PAIRS``) moves G's and B's logits by the earlier channels'
    component posteriors (``posterior_shift``), one with a ``coupling`` net moves their
    logits, means and log-scales by what the earlier channels tell (``coupling``), and one with
    a neighbour net moves every channel's by ``neighbours`` (B, 3, 3, K, H, W: channel, then
    logits, means and log-scales, on their grids; ``neighbours.NeighbourNet``), the moves summed
    before each clamp.
    """
    g = split_groups(params, components)
    xf = x.to(params.dtype).unsqueeze(2) * GRID["mean"]            # (B,3,1,H,W) on the mean grid
    mean = conditioned_means(g, x, predicted)
    lo, hi = RANGE["mean"]
    nll, posts, told = [], [], []
    for c in range(3):
        logit, mean_c, logscale = g["logit"][:, c], mean[:, c], g["logscale"][:, c]
        move, shift, widen = 0, 0, 0
        if posterior is not None and c:
            acc = sum(torch.einsum("kj,bjhw->bkhw", weights, posts[source])
                      for weights, (target_c, source) in zip(posterior, POSTERIOR_PAIRS) if target_c == c)
            move = floor_ste(acc * (POSTERIOR_M / 2**POSTERIOR_S))
        if coupling is not None and c:
            moves = coupling(c, torch.cat(told, 1))
            move, shift, widen = move + moves["logit"], moves["mean"], moves["logscale"]
        if neighbours is not None:
            move, shift, widen = move + neighbours[:, c, 0], shift + neighbours[:, c, 1], widen + neighbours[:, c, 2]
        if not isinstance(shift, int):
            mean_c = torch.clamp(mean_c + shift, lo, hi)
            logscale = torch.clamp(logscale + widen, *RANGE["logscale"])
        if not isinstance(move, int):
            logit = torch.clamp(logit + move, *RANGE["logit"])
        log_p = _log_probs(xf[:, c], x[:, c], mean_c, logscale)
        nll.append(-torch.logsumexp(torch.log_softmax(logit / GRID["logit"], dim=1) + log_p, dim=1))
        if posterior is not None or coupling is not None:
            posts.append(log2_posterior(logit, log_p))
        if coupling is not None:
            told.append(coupling.told(posts[c], mean_c, logscale, x[:, c]))
    return torch.stack(nll, 1)


def _log_probs(xf: Tensor, x: Tensor, mean: Tensor, logscale: Tensor) -> Tensor:
    """Each component's log-probability (B, K, H, W) of one channel's values x (B, H, W) (xf:
    on the mean grid, (B, 1, H, W)), its bin's mass under the logistic, the tails folded into 0
    and 255."""
    inv_s = torch.exp(-logscale / GRID["logscale"])
    centred = (xf - mean) / GRID["mean"]
    plus = (centred + 0.5) * inv_s
    minus = (centred - 0.5) * inv_s
    log_cdf_plus = plus - F.softplus(plus)                          # log σ(plus)
    log_one_minus_cdf_min = -F.softplus(minus)                      # log (1 - σ(minus))
    mid = torch.sigmoid(plus) - torch.sigmoid(minus)
    log_mid = torch.log(mid.clamp_min(1e-12))
    # Where the bin is far in a tail, use the density at its centre (PixelCNN++'s guard).
    log_pdf = centred * inv_s - 2 * F.softplus(centred * inv_s) + torch.log(inv_s)
    log_mid = torch.where(mid > 1e-5, log_mid, log_pdf)
    xk = x.unsqueeze(1).expand_as(plus)
    return torch.where(xk == 0, log_cdf_plus, torch.where(xk == 255, log_one_minus_cdf_min, log_mid))


def head_multipliers(groups: Sequence[str], components: int) -> Tensor:
    """(P,) integer grid units per unit of head output, GAIN × GRID of each output's group."""
    per_group = [GAIN[name] * GRID[name] for name in groups]
    return torch.tensor(per_group, dtype=torch.float64).repeat_interleave(3 * components)


def round_head(z: Tensor, groups: Sequence[str]) -> Tensor:
    """Round real head outputs (B, P, H, W) onto their groups' integer grids; STE gradients."""
    parts = [round_ste(p * GAIN[n] * GRID[n]) for n, p in zip(groups, z.chunk(len(groups), dim=1))]
    return torch.cat(parts, 1)


def clamp_head(p: Tensor, groups: Sequence[str]) -> Tensor:
    """Clamp grid-valued head parameters (B, P, H, W) to their groups' ranges."""
    parts = [torch.clamp(q, *RANGE[n]) for n, q in zip(groups, p.chunk(len(groups), dim=1))]
    return torch.cat(parts, 1)


# ----------------------------------------------------------------------------- integer (coding)

def clip(values: Array, lo: Array | int, hi: Array | int) -> Array:
    """``values`` clamped to [lo, hi]: for numpy arrays by ``np.maximum`` and ``np.minimum``,
    which skip ``np.clip``'s Python-level checks (several µs a call, and every decoder step
    makes dozens), for tensors by ``torch.clamp``."""
    if isinstance(values, np.ndarray):
        return np.minimum(np.maximum(values, lo), hi)
    return torch.clamp(values, lo, hi)


def _moved(values: Array, offset: Array | int, group: str) -> Array:
    """Integer parameters of ``group`` plus an offset, clamped to the group's range (as they are)."""
    if isinstance(offset, int) and not offset:
        return values
    return clip(values + offset, *RANGE[group])


class IntegerMixture:
    """Exact 256-way integer PMFs from integer head parameters, through the shipped tables.

    A component's CDF at the edge below symbol ``x`` depends only on its log-scale, the
    fractional part of its mean, and ``x − floor(mean)``. So the CDFs of every (log-scale,
    mean fraction) pair are tabulated once, exactly, from the shipped integer tables, and a
    component's 256 masses are one contiguous window of that table: a gather, not arithmetic.
    """

    #: Window origin: table column of symbol x for a mean with integer part m is x − m + OFFSET.
    OFFSET = -RANGE["mean"][0] // 16 + 256
    CHUNK = 512  # pixels per pass of the tensor path; keeps its (n, K, 256) gather in cache

    def __init__(self, tables: dict[str, np.ndarray], components: int, device: torch.device,
                 bounds: tuple[Tensor, Tensor], posterior: np.ndarray | None = None,
                 coupling: "IntegerCoupling | None" = None, neighbours: "IntegerNeighbours | None" = None):
        self.k = components
        #: The integer coupling net of a model with one, else None.
        self.coupling = coupling
        #: The integer neighbour net of a model with one, else None.
        self.neighbours = neighbours
        if posterior is not None and (posterior.shape != (len(POSTERIOR_PAIRS), components, components)
                                      or np.abs(posterior).max() > POSTERIOR_MAX):
            raise CertificateError(f"posterior weights must be {len(POSTERIOR_PAIRS)} × {components} × "
                                   f"{components} within ±{POSTERIOR_MAX}: their sums could overflow int64")
        #: The posterior weights (``POSTERIOR_PAIRS``, K, K) int64 of a model with them, else None.
        self.posterior = None if posterior is None else np.ascontiguousarray(posterior, dtype=np.int64)
        self.exp = torch.as_tensor(tables["exp"], dtype=torch.int64, device=device)
        cdf = self._cdf_table(tables)                                   # (L, 16, 577)
        self.mass = torch.diff(cdf, dim=-1).to(torch.int32).to(device)  # (L, 16, 576)
        self.cdf = cdf.to(torch.int32).to(device)
        weight_sum = components * int(self.exp.max())
        if (weight_sum << CDF_BITS) + (weight_sum >> 2) >= 2**31:
            raise CertificateError("mixture tables too large: weighted masses could overflow int32")
        self.windows = self.mass.view(-1, self.mass.shape[-1]).unfold(1, 256, 1)  # (L·16, 321, 256)
        # Host copies for numpy and the compiled loops (here, ``online`` and ``steps``): the flat
        # CDF table and the weights' exp table, numpy arrays in, numpy PMFs out.
        self.host_cdf = self.cdf.view(-1).cpu().numpy()
        self.host_exp = self.exp.cpu().numpy().astype(np.int32)
        #: Columns of a CDF table row (the flat table's stride).
        self.cols = self.cdf.shape[-1]
        #: 2^16 / scale of each log-scale (index: log-scale − its range's low end), int64.
        self.inv_scale = np.asarray(tables["inv_scale"], dtype=np.int64)
        #: The head parameters' clamp bounds (P,), as the network applies them, int32.
        self._lo, self._hi = (b.to(device=device, dtype=torch.int32) for b in bounds)
        self._np_lo, self._np_hi = self._lo.cpu().numpy(), self._hi.cpu().numpy()
        # One PMF now: the compiled loops' one-time start-up (about half a second per process)
        # happens here, in the process that loads the model, not again in every forked worker.
        self._pmf_numpy(*np.zeros((3, 1, components), dtype=np.int32))

    @classmethod
    def _cdf_table(cls, tables: dict[str, np.ndarray]) -> Tensor:
        """CDF·2^16 at edge ``16·(j − OFFSET) − f − 8`` (mean grid) for each log-scale and fraction f."""
        g = GRID["mean"]
        sig = torch.as_tensor(tables["sigmoid"], dtype=torch.int64)
        inv = torch.as_tensor(tables["inv_scale"], dtype=torch.int64)
        j = torch.arange(2 * cls.OFFSET + 1, dtype=torch.int64)
        frac = torch.arange(g, dtype=torch.int64)
        d = (j - cls.OFFSET) * g - frac[:, None] - g // 2                  # (16, 577)
        t = d[None] * inv[:, None, None]                                 # (L, 16, 577)
        shift = INV_BITS + int(math.log2(g)) - int(math.log2(SIG_STEPS))
        idx = torch.clamp((t >> shift) + SIG_HALF * SIG_STEPS, 0, 2 * SIG_HALF * SIG_STEPS)
        return sig[idx]

    def channel(self, params: Array, ch: int, known: Array, scale_offset: Array | int = 0,
                mean_offset: Array | int = 0, coef_offset: Sequence[Array | int] = (0, 0, 0),
                predicted: Array | None = None, before: Sequence[np.ndarray] = (),
                around: np.ndarray | None = None) -> tuple[Array, Array, Array]:
        """Logits, conditioned means and log-scales (n, K) of channel ``ch``.

        ``known`` (n, ≥ch) holds the already coded channels of the same pixels; with a blend
        group, ``predicted`` (n, 3) their ``predictor.predictions``; with posterior weights,
        ``before`` what the earlier channels ``told`` (posterior weights and a coupling net
        move this channel's parameters by it), with a neighbour net, ``around`` its moves of
        every channel ((n, 3, 3, K), ``neighbours``): ``moves``. The offsets (ints,
        or (n, 1)) are the per-stream adaptation the encoder chooses and the stream carries
        (``adapt``): the colour coefficients' (G←R, B←R, B←G) are added to the coefficients, the
        others to every log-scale and to the conditioned mean, each before its clamp. Written
        with operators only, so it runs alike on torch tensors and numpy arrays (int32 suffices:
        every intermediate stays below 2^23).
        """
        logit = params.reshape(params.shape[0], -1, 3, self.k)[:, 0, ch]
        moves = self.moves(ch, before, around)
        return (self._logits_moved(logit, moves),
                *self.conditioned(params, ch, known, scale_offset, mean_offset, coef_offset, predicted, moves))

    def conditioned(self, params: Array, ch: int, known: Array, scale_offset: Array | int = 0,
                    mean_offset: Array | int = 0, coef_offset: Sequence[Array | int] = (0, 0, 0),
                    predicted: Array | None = None, moves: np.ndarray | None = None) -> tuple[Array, Array]:
        """``channel``'s conditioned means and log-scales (n, K) alone, without its logits (what
        a search over the offsets, which leave the logits alone, evaluates), given the channel's
        ``moves`` (``moves``: a search computes them once, since the offsets do not change them)."""
        groups = params.reshape(params.shape[0], -1, 3, self.k)
        mean, logscale, coef = (groups[:, i] for i in range(1, _BLEND))
        g, c = GRID["mean"], GRID["coef"]
        lo, hi = RANGE["mean"]
        m = mean[:, ch]
        if ch >= 1:
            k0, k1, k2 = (_moved(coef[:, j], coef_offset[j], "coef") for j in range(3))
            dr = known[:, :1] * g - mean[:, 0]
            mg = clip(mean[:, 1] + dr * k0 // c, lo, hi)
            m = mg if ch == 1 else clip(m + (dr * k1 + (known[:, 1:2] * g - mg) * k2) // c, lo, hi)
        if groups.shape[1] > _BLEND:
            target = predictor.target(predicted, known, ch)[:, None] * g
            m = clip(m + groups[:, _BLEND, ch] * (target - m) // GRID["blend"], lo, hi)
        logscale = logscale[:, ch]
        if moves is not None:  # each clamped to its range before the offsets, as the decoder's step does
            m = clip(m + self._on(moves[:, 1], m), lo, hi)
            logscale = clip(logscale + self._on(moves[:, 2], logscale), *RANGE["logscale"])
        return self.shift(m, logscale, scale_offset, mean_offset)

    @staticmethod
    def _on(values: np.ndarray, like: Array) -> Array:
        """Host integers ``values`` as ``like``'s kind: a tensor on its device, or a numpy array, of its dtype."""
        if isinstance(like, Tensor):
            return torch.from_numpy(values).to(like.device, like.dtype)
        return values.astype(like.dtype)

    def _logits_moved(self, logit: Array, moves: np.ndarray | None) -> Array:
        """A channel's logits (n, K) plus their ``moves``, clamped to the logit range."""
        if moves is None:
            return logit
        return clip(logit + self._on(moves[:, 0], logit), *RANGE["logit"])

    @property
    def tells(self) -> bool:
        """Whether a decoded channel's outcome (``told``) moves the channels after it."""
        return self.posterior is not None or self.coupling is not None

    def told(self, logit: Array, mean: Array, logscale: Array, x: Array) -> np.ndarray:
        """What a decoded channel tells the channels after it, (n, 2K + 1) int64 on the host,
        from its parameters as ``channel`` gave them and its symbols ``x`` (n,): log2 of each
        component's posterior at x, w_k · (F_k(x + 1) − F_k(x)) over their sum (``cost``), in
        1/POSTERIOR_UNIT bits within [−POSTERIOR_FLOOR bits, 0]; x's distance from each
        component's mean in 1/16 of its scale (through the shipped 2^16 / scale table), within
        ±TOLD_MAX; and x − 128."""
        logit, mean, logscale = (np.ascontiguousarray(v.cpu().numpy() if isinstance(v, Tensor) else v, dtype=np.int32)
                                 for v in (logit, mean, logscale))
        x = np.ascontiguousarray(x.cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.int64)
        out = np.empty((x.size, 2 * self.k + 1), dtype=np.int64)
        _told(logit, mean, logscale, x, self.host_exp, self.host_cdf, self.cols, self.inv_scale, out)
        return out

    def unmoved_told(self, params: np.ndarray, known: np.ndarray, predicted: np.ndarray | None) -> np.ndarray:
        """What each channel of pixels told (n, 3, 2K + 1) int64 (``told``), from their head
        parameters (n, P) as the network gave them (no offsets, no moves), their values (n, 3)
        and, for a model that blends, their classical predictions (n, 3): what a neighbour net
        reads (``neighbours``). One compiled pass over the pixels."""
        n = params.shape[0]
        out = np.empty((n, 3, 2 * self.k + 1), dtype=np.int64)
        blend = predicted is not None
        guess = np.ascontiguousarray(predicted, dtype=np.int32) if blend else np.zeros((1, 3), dtype=np.int32)
        _unmoved_told(np.ascontiguousarray(params, dtype=np.int32), np.ascontiguousarray(known, dtype=np.int32),
                      blend, guess, self.k, self.host_exp, self.host_cdf, self.cols, self.inv_scale, out)
        return out

    def moves(self, ch: int, before: Sequence[np.ndarray], around: np.ndarray | None = None) -> np.ndarray | None:
        """What moves channel ``ch``'s logits, means and log-scales, (n, 3, K) int64, from what the
        channels before it ``told`` (``before``) and the neighbour net's moves of every channel
        (``around``, (n, 3, 3, K), or None): the posterior weights' ``posterior_shift``, the
        coupling net's moves and the neighbour net's, summed; None where nothing moves it."""
        follows = ch > 0 and self.tells  # moved by what the channels before it told
        if not follows and around is None:
            return None
        if follows and len(before) < ch:
            raise ValueError(f"channel {ch} of a model whose channels follow the ones before needs the {ch} "
                             f"channels before it")
        out = np.zeros((len(around) if around is not None else before[0].shape[0], 3, self.k), dtype=np.int64)
        if follows and self.posterior is not None:
            out[:, 0] = self.posterior_shift(ch, [b[:, :self.k] for b in before])
        if follows and self.coupling is not None:
            out += self.coupling.moves(ch, before[:ch])
        if around is not None:
            out += around[:, ch]
        return out

    def posterior_shift(self, ch: int, before: Sequence[np.ndarray]) -> np.ndarray:
        """What the posterior weights add to channel ``ch``'s logits, (n, K) int64: for each
        earlier channel, the weights times its ``log_posterior`` (``before``, (n, K) each), summed, onto the
        logit grid (``POSTERIOR_M``). Integers throughout (numpy's integer products are exact)."""
        acc = sum(before[source] @ weights.T
                  for weights, (target, source) in zip(self.posterior, POSTERIOR_PAIRS) if target == ch)
        return (acc * POSTERIOR_M) >> POSTERIOR_S

    def moved_params(self, params: Array, head: Array) -> Array:
        """Head parameters (n, P) plus a stream's offset to each of them (``head``: (P,) or (n, P)
        int32), each clamped to its group's range as the network clamps them."""
        if isinstance(params, np.ndarray):
            return clip(params + head, self._np_lo, self._np_hi)
        return clip(params + torch.as_tensor(head, device=params.device), self._lo, self._hi)

    @staticmethod
    def shift(mean: Array, logscale: Array, scale_offset: Array | int, mean_offset: Array | int
              ) -> tuple[Array, Array]:
        """Conditioned means and log-scales (n, K) moved by a stream's offsets, within their ranges."""
        return _moved(mean, mean_offset, "mean"), _moved(logscale, scale_offset, "logscale")

    def pmf(self, logit: Array, mean: Array, logscale: Array) -> Array:
        """(n, 256) integer masses, each ≥ 1, from one channel's (n, K) integer parameters: for
        numpy parameters a float64 array of them (the CPU coder's path and the dtype it takes,
        compiled: ``_mixture_pmf``), for tensors an int32 tensor on their device, ``CHUNK``
        pixels at a time, so that the (CHUNK, K, 256) gather stays in cache."""
        if isinstance(logit, np.ndarray):
            return self._pmf_numpy(logit, mean, logscale)
        n = logit.shape[0]
        if n <= self.CHUNK:
            return self._pmf(logit, mean, logscale)
        return torch.cat([self._pmf(*(t[a:a + self.CHUNK] for t in (logit, mean, logscale)))
                          for a in range(0, n, self.CHUNK)])

    def code_lengths(self, logit: np.ndarray, x: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The code lengths in bits (n,) of symbols x (n,) as a function of one channel's means
        and log-scales (n, K), its logits fixed: −log2 of the probability ``pmf`` gives them.

        What the encoder's adaptation search evaluates many times, so the mixture weights and the
        PMF totals are computed once, and each evaluation costs K CDF lookups per symbol instead of
        256 masses (``symbol_masses``); every PMF sums to Σ_k w_k·2^16 + 256·(Σw >> 2).
        """
        log_total = np.log2(self.totals(logit))
        mass = self.symbol_masses(logit, x)
        return lambda mean, logscale: log_total - np.log2(mass(mean, logscale))

    def totals(self, logit: np.ndarray) -> np.ndarray:
        """What each PMF of one channel's logits (n, K) sums to, (n,) float64, without building
        it: every component's masses sum to 2^16, so Σ_k w_k·2^16 + 256·(Σw >> 2)."""
        w = self._weights_numpy(logit).sum(1, dtype=np.int64)
        return ((w << CDF_BITS) + 256 * (w >> 2)).astype(np.float64)

    def symbol_masses(self, logit: np.ndarray, x: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """pmf[x] (n,) int64, the integer mass ``pmf`` gives each symbol x (n,), as a function
        of one channel's means and log-scales (n, K), its logits fixed: one pair of CDF lookups
        per component, compiled (``symbol_mass``)."""
        w, total = np.empty(logit.shape, dtype=np.int64), np.empty(logit.shape[0], dtype=np.int64)
        _weights(np.ascontiguousarray(logit, dtype=np.int32), self.host_exp, w, total)

        def mass(mean: np.ndarray, logscale: np.ndarray) -> np.ndarray:
            out = np.empty(x.shape[0], dtype=np.int64)
            _symbol_masses(w, total, *(np.ascontiguousarray(v, dtype=np.int32) for v in (mean, logscale)), x,
                           self.host_cdf, self.cols, out)
            return out
        return mass

    def _position(self, mean: Array, logscale: Array) -> tuple[Array, Array]:
        """Per component (n, K): the CDF table row (log-scale and mean fraction) and the column of
        the edge below symbol 0 (mean's integer part). Operators only: tensors or arrays."""
        g = GRID["mean"]
        whole = mean // g
        return (logscale - RANGE["logscale"][0]) * g + (mean - whole * g), self.OFFSET - whole

    def _weights_numpy(self, logit: np.ndarray) -> np.ndarray:
        """Mixture weights (n, K) int32, ≤ 2^WEIGHT_BITS: the shipped exp table at each logit's
        gap below the largest."""
        return self.host_exp[np.minimum(logit.max(1, keepdims=True) - logit, LOGIT_GAP)]

    def _locate(self, logit: Tensor, mean: Tensor, logscale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per component: CDF table row, column of the edge below symbol 0, and mixture weight."""
        gap = torch.clamp(logit.max(-1, keepdim=True).values - logit, 0, LOGIT_GAP)
        return *self._position(mean, logscale), torch.take(self.exp, gap)  # weights ≤ 2^WEIGHT_BITS

    def _pmf(self, logit: Tensor, mean: Tensor, logscale: Tensor) -> Tensor:
        """Σ_k w_k · (component k's 256 masses), the tails folded into symbols 0 and 255, plus
        the floor Σw >> 2. Sums stay below K · 2^WEIGHT_BITS · 2^CDF_BITS < 2^31 (certified at
        load), so int32 arithmetic is exact (torch's lookups want int64 indices)."""
        row, start, w = self._locate(*(t.long() for t in (logit, mean, logscale)))
        w32 = w.to(torch.int32)
        pmf = (self.windows[row, start] * w32.unsqueeze(-1)).sum(1, dtype=torch.int32)
        at = row * self.cdf.shape[-1] + start
        low = torch.take(self.cdf, at)                                   # CDF below symbol 0
        high = (1 << CDF_BITS) - torch.take(self.cdf, at + 256)          # mass above symbol 255
        pmf[:, 0] += (low * w32).sum(-1, dtype=torch.int32)
        pmf[:, 255] += (high * w32).sum(-1, dtype=torch.int32)
        return pmf + (w32.sum(-1, keepdim=True, dtype=torch.int32) >> 2)

    def _pmf_numpy(self, logit: np.ndarray, mean: np.ndarray, logscale: np.ndarray) -> np.ndarray:
        """``_pmf`` on the CPU, as float64 integers (what the coder takes): the same integers,
        each PMF built in one compiled pass over its components' CDF windows (``_mixture_pmf``)
        instead of numpy's gathered (n, K, 256) temporaries."""
        out = np.empty((logit.shape[0], 256), dtype=np.float64)
        ints = (np.ascontiguousarray(v, dtype=np.int32) for v in (logit, mean, logscale))
        _mixture_pmf(*ints, self.host_cdf, self.host_exp, self.cols, out)
        return out


#: The tables' geometry as the compiled loops read it (module constants, frozen when they compile).
_MEAN_GRID, _LOGSCALE_LO, _LOGSCALE_HI = GRID["mean"], *RANGE["logscale"]
_COEF_GRID, _BLEND_GRID = GRID["coef"], GRID["blend"]
_MEAN_LO, _MEAN_HI = RANGE["mean"]
_COEF_LO, _COEF_HI = RANGE["coef"]
_WINDOW_ORIGIN = IntegerMixture.OFFSET


@numba.njit(cache=True, nogil=True)
def clamped(value, lo, hi):
    """``value`` within [lo, hi]: the compiled loops' clamp."""
    return min(max(value, lo), hi)


@numba.njit(cache=True, nogil=True)
def window(mean, logscale, cols):
    """Flat index in the CDF table (``cols`` columns a row) of one component's CDF at the edge
    below symbol 0: its row is the log-scale and the mean's fraction, its column the mean's
    integer part (``IntegerMixture._position``)."""
    whole = mean // _MEAN_GRID
    return ((logscale - _LOGSCALE_LO) * _MEAN_GRID + (mean - whole * _MEAN_GRID)) * cols + _WINDOW_ORIGIN - whole


@numba.njit(cache=True, nogil=True)
def pixel_pmf(logit, mean, logscale, shift, cdf, exp, cols, edges, out):
    """One pixel's ``IntegerMixture._pmf`` into ``out`` (256,) from its (K,) integer parameters,
    every log-scale moved by ``shift`` within its range first, from the flat CDF table alone:
    the mixture's CDF F at the 257 symbol edges (``edges``: scratch), Σ_k w_k · (component k's
    CDF at edges 1…255, one contiguous window), with F = 0 below symbol 0 and Σw · 2^16 above
    255, so that the tails fold into symbols 0 and 255; then pmf[s] = F[s+1] − F[s] + Σw >> 2.
    One table, read in runs: half the memory of separate mass and tail lookups. int32 sums
    (certified at load)."""
    top = logit.max()
    edges[:] = 0
    total = np.int32(0)
    for j in range(logit.size):
        w = exp[min(top - logit[j], LOGIT_GAP)]  # the weight of the logit's gap below the top
        total += w
        at = window(mean[j], clamped(logscale[j] + shift, _LOGSCALE_LO, _LOGSCALE_HI), cols)
        part = cdf[at:at + 256]
        for s in range(1, 256):
            edges[s] += w * part[s]
    edges[256] = total << CDF_BITS
    floor = total >> 2
    for s in range(256):
        out[s] = edges[s + 1] - edges[s] + floor


@numba.njit(cache=True, nogil=True)
def mixture_weights(logit, exp, out):
    """One pixel's mixture weights (K,) from its logits into ``out``: the exp table at each
    logit's gap below the largest (as ``pixel_pmf`` weighs them); returns their sum."""
    top = logit.max()
    total = 0
    for j in range(logit.size):
        out[j] = exp[min(top - logit[j], LOGIT_GAP)]
        total += out[j]
    return total


@numba.njit(cache=True, nogil=True)
def symbol_mass(w, total, mean, logscale, shift, x, cdf, cols):
    """``pixel_pmf``'s mass at symbol x alone (int64), from the pixel's ``mixture_weights`` w
    (K,) and their sum: Σ_k w_k · (F_k(x + 1) − F_k(x)) + Σw >> 2, every log-scale moved by
    ``shift`` within its range first; one pair of CDF lookups per component."""
    mass = 0
    for j in range(w.size):
        mass += w[j] * component_mass(mean[j], clamped(logscale[j] + shift, _LOGSCALE_LO, _LOGSCALE_HI), x, cdf, cols)
    return mass + (total >> 2)


@numba.njit(cache=True, nogil=True)
def component_mass(mean, logscale, x, cdf, cols):
    """One component's F(x + 1) − F(x) ·2^16 at symbol x, its tails folded into 0 and 255."""
    at = window(mean, logscale, cols)
    below = cdf[at + x] if x > 0 else 0
    above = cdf[at + x + 1] if x < 255 else 1 << CDF_BITS
    return above - below


@numba.njit(cache=True, nogil=True)
def pixel_told(logit, mean, logscale, x, exp, cdf, cols, inv_scale, part, out):
    """``IntegerMixture.told`` of one pixel's channel: its (K,) parameters and symbol x into
    ``out`` (2K + 1,) (``part``: (K,) int64 scratch)."""
    k = logit.size
    mixture_weights(logit, exp, part)
    total = 0
    for j in range(k):
        part[j] *= component_mass(mean[j], logscale[j], x, cdf, cols)
        total += part[j]
    whole = cost(max(total, 1))
    for j in range(k):
        out[j] = min(max((whole - cost(max(part[j], 1))) >> _POSTERIOR_DOWN, -POSTERIOR_FLOOR * POSTERIOR_UNIT), 0)
        distance = ((x * _MEAN_GRID - mean[j]) * inv_scale[logscale[j] - _LOGSCALE_LO]) >> INV_BITS
        out[k + j] = min(max(distance, -TOLD_MAX), TOLD_MAX)
    out[2 * k] = x - 128


@numba.njit(cache=True, nogil=True)
def conditioned_mean(params, i, c, j, k, r, g, coef_gr, coef_br, coef_bg, blend, target):
    """Component j's mean of channel ``c`` of pixel i (``IntegerMixture.conditioned`` without
    moves or the offsets after them), from its head parameters ``params[i]``, its R and G values
    (``r``, ``g``: those decoded before ``c``), the colour coefficients' offsets and, for a model
    that ``blend``s, the channel's classical prediction ``target`` (``predictor.target``).
    Scalars and one array: a compiled loop calls it for every component."""
    m = params[i, (3 + c) * k + j]
    if c >= 1:  # G's and B's means follow R's (and G's) surprise, by the coefficients
        dr = r * _MEAN_GRID - params[i, 3 * k + j]
        mg = clamped(params[i, 4 * k + j] + dr * clamped(params[i, 9 * k + j] + coef_gr, _COEF_LO, _COEF_HI)
                     // _COEF_GRID, _MEAN_LO, _MEAN_HI)
        if c == 1:
            m = mg
        else:
            k1 = clamped(params[i, 10 * k + j] + coef_br, _COEF_LO, _COEF_HI)
            k2 = clamped(params[i, 11 * k + j] + coef_bg, _COEF_LO, _COEF_HI)
            m = clamped(m + (dr * k1 + (g * _MEAN_GRID - mg) * k2) // _COEF_GRID, _MEAN_LO, _MEAN_HI)
    if blend:  # towards the classical prediction
        m = clamped(m + params[i, (12 + c) * k + j] * (target * _MEAN_GRID - m) // _BLEND_GRID, _MEAN_LO, _MEAN_HI)
    return m


@numba.njit(cache=True, nogil=True)
def blend_target(known, predicted, i, c, blend):
    """``predictor.target`` of channel ``c`` of pixel i (0 for a model that does not blend)."""
    if not blend:
        return 0
    return predicted[i, 0] if c == 0 else known[i, c - 1] + predicted[i, c]


@numba.njit(cache=True, nogil=True)
def _told(logit, mean, logscale, x, exp, cdf, cols, inv_scale, out):
    """``IntegerMixture.told`` of each pixel's symbol x (n,) into ``out`` (n, 2K + 1)."""
    part = np.empty(logit.shape[1], dtype=np.int64)
    for i in range(x.size):
        pixel_told(logit[i], mean[i], logscale[i], x[i], exp, cdf, cols, inv_scale, part, out[i])


@numba.njit(cache=True, nogil=True)
def _unmoved_told(params, known, blend, predicted, k, exp, cdf, cols, inv_scale, out):
    """``IntegerMixture.unmoved_told`` of every pixel into ``out`` (n, 3, 2K + 1)."""
    logit, mean, logscale = np.empty(k, dtype=np.int32), np.empty(k, dtype=np.int32), np.empty(k, dtype=np.int32)
    part = np.empty(k, dtype=np.int64)
    for i in range(params.shape[0]):
        for c in range(3):
            target = blend_target(known, predicted, i, c, blend)
            for j in range(k):
                logit[j] = params[i, c * k + j]
                mean[j] = conditioned_mean(params, i, c, j, k, known[i, 0], known[i, 1], 0, 0, 0, blend, target)
                logscale[j] = params[i, (6 + c) * k + j]
            pixel_told(logit, mean, logscale, known[i, c], exp, cdf, cols, inv_scale, part, out[i, c])


@numba.njit(cache=True, nogil=True)
def _weights(logit, exp, w, total):
    """``mixture_weights`` of every pixel's logits (n, K) into ``w`` and their sums into ``total``."""
    for i in range(logit.shape[0]):
        total[i] = mixture_weights(logit[i], exp, w[i])


@numba.njit(cache=True, nogil=True)
def _symbol_masses(w, total, mean, logscale, x, cdf, cols, out):
    """``symbol_mass`` of each pixel's symbol x (n,) under its (n, K) parameters, into ``out``."""
    for i in range(x.size):
        out[i] = symbol_mass(w[i], total[i], mean[i], logscale[i], 0, x[i], cdf, cols)


@numba.njit(cache=True, nogil=True)
def _mixture_pmf(logit, mean, logscale, cdf, exp, cols, out):
    """``pixel_pmf`` of every pixel of int32 (n, K) parameters into ``out`` (n, 256)."""
    edges = np.empty(257, dtype=np.int32)
    for i in range(logit.shape[0]):
        pixel_pmf(logit[i], mean[i], logscale[i], 0, cdf, exp, cols, edges, out[i])
