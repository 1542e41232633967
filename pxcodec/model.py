"""The float PixelCNN used for training, with quantisation simulated exactly where it matters.

Every weight is fake-quantised to int8 per output channel, every activation to 0…127 (the
residual stream to 0…``stream_max``) on a learned per-layer scale, and the head's parameters to their integer grids, all with
straight-through gradients. The integer model exported from it (``weights.export``) therefore
computes what this model computed in training, up to the rounding of requantisation multipliers.

Layers (all causal, see ``config``):
    first: masked type-A conv over the pixels → residual stream h, and a linear skip to the head
    blocks: h ← clamp(h + round(conv1×1(relu_q(masked3×3(h))))), on one shared stream scale (the
        masked 3×3 widens to ``cfg.inner`` channels, the 1×1 mix narrows back)
    head: conv1×1(h) + skip + bias → mixture parameters on their grids (with ``blend``, also how
        far each mean moves towards the classical prediction of ``predictor``)
    posterior (``cfg.posterior``): weights (3, K, K) that move G's and B's mixture logits by R's
        (and G's) components' posterior at their decoded values (``mixture.posterior_shift``)
    coupling (``cfg.coupling``): a small MLP that moves G's (and B's) logits, means and
        log-scales by what R (and G) turned out to be (``coupling``)
    neighbours (``cfg.neighbours``): a small MLP that moves every channel's logits, means and
        log-scales by what the pixels around turned out to be (``neighbours``; W, N, NW and NE,
        at ``cfg.neighbour_reach`` 2 five more, at 3 eight more)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BLOCK_TAPS, STREAM_MAX, ModelConfig, Tap
from . import predictor
from .coupling import CouplingNet
from .neighbours import NeighbourNet, unmoved_told
from .mixture import POSTERIOR_GAIN, POSTERIOR_MAX, POSTERIOR_PAIRS, clamp_head, mixture_nll, round_head, round_ste
from .network import pixel_codes

ACT_MAX = 127      # activations are 0…ACT_MAX (int8-safe)
WEIGHT_MAX = 127   # int8 weights are −WEIGHT_MAX…WEIGHT_MAX
INPUT_SCALE = 1.0 / 128  # pixel input is (x − 128) and a border flag of 127, times this scale


def weight_scale(w: Tensor) -> Tensor:
    """Per-output-channel int8 scale of a (Cout, …) weight. A channel without weights (a block
    just grown as an identity, whose mix is zero) borrows the layer's largest scale (1/WEIGHT_MAX
    where no channel has weights), so that its bias, rounded to this scale's units, and its
    exported requantisation stay on a usable grid."""
    top = w.detach().abs().flatten(1).amax(1)
    fallback = torch.where(top.max() > 0, top.max(), torch.ones_like(top.max()))
    return torch.where(top > 0, top, fallback) / WEIGHT_MAX


def fake_quant_weight(w: Tensor) -> Tensor:
    s = weight_scale(w).view(-1, *([1] * (w.dim() - 1)))
    return round_ste(w / s) * s


def _bfloat16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively through oneDNN (AVX-512 BF16 or AMX)."""
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: Whether training's convolutions on the CPU take their backward pass in bfloat16 (float32
#: sums): where the CPU does it natively, 3-4 times faster than float32's backward, a compiled
#: training step about a quarter faster (``benchmarks/train_step.py``), and the gradients within
#: about 0.2 % of float32's. The forward pass, which quantisation-aware training rounds, stays
#: float32.
BFLOAT16_BACKWARD = _bfloat16_native()

#: The memory layout of the network's activations: channels last (each pixel's channels side by
#: side) makes a compiled training step on this CPU 6-7 % faster than channels first
#: (``benchmarks/train_step.py``); the values are the same up to the order of float sums.
MEMORY_FORMAT = torch.channels_last


class _Conv(torch.autograd.Function):
    """``F.conv2d`` (stride 1, no padding) whose backward pass multiplies in bfloat16."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.biased = b is not None
        return F.conv2d(x, w, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        x, w = ctx.saved_tensors
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad.bfloat16(), x.bfloat16(), w.bfloat16(), [w.shape[0]] if ctx.biased else None,
            [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, ctx.biased])
        return gx.float(), gw.float(), gb.float() if ctx.biased else None


def fake_quant_act(z: Tensor, log_scale: Tensor, top: int = ACT_MAX) -> Tensor:
    """Clamped ReLU onto the integer grid 0…top of scale exp(log_scale)."""
    s = torch.exp(log_scale)
    return torch.clamp(round_ste(z / s), 0, top) * s


class MaskedConv(nn.Module):
    """A conv over a causal tap set, as a (r+1)×(2r+1) kernel padded above, left and right."""

    def __init__(self, cin: int, cout: int, taps: tuple[Tap, ...], bias: bool = True):
        super().__init__()
        self.taps = taps
        self.r = max(max(-dy, abs(dx)) for dy, dx in taps)
        self.weight = nn.Parameter(torch.empty(cout, cin, self.r + 1, 2 * self.r + 1))
        mask = torch.zeros(1, 1, self.r + 1, 2 * self.r + 1)
        for dy, dx in taps:
            mask[0, 0, dy + self.r, dx + self.r] = 1
        self.register_buffer("mask", mask)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (cin * len(taps))))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: Tensor, in_scale: Tensor | float) -> Tensor:
        w = fake_quant_weight(self.weight * self.mask)
        b = None
        if self.bias is not None:  # biases are int32 in the accumulator's units
            unit = weight_scale(self.weight * self.mask) * in_scale
            b = round_ste(self.bias / unit) * unit
        x = F.pad(x, (self.r, self.r, self.r, 0))
        if BFLOAT16_BACKWARD and x.device.type == "cpu" and torch.is_grad_enabled():
            return _Conv.apply(x, w, b)
        return F.conv2d(x, w, b)


class PixelCNN(nn.Module):
    """Float/QAT PixelCNN over 8-bit RGB; ``forward`` gives the head's grid-valued parameters."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c, p = cfg.channels, cfg.params_per_pixel
        self.first = MaskedConv(4, c, cfg.first_taps)
        self.skip = MaskedConv(4, p, cfg.first_taps, bias=False)
        self.convs = nn.ModuleList(MaskedConv(c, cfg.inner, BLOCK_TAPS) for _ in range(cfg.blocks))
        self.mixes = nn.ModuleList(MaskedConv(cfg.inner, c, ((0, 0),)) for _ in range(cfg.blocks))
        for m in self.mixes:
            nn.init.normal_(m.weight, 0.0, 0.3 / math.sqrt(cfg.inner))
        self.head = MaskedConv(c, p, ((0, 0),), bias=False)
        nn.init.normal_(self.head.weight, 0.0, 0.1 / math.sqrt(c))
        nn.init.normal_(self.skip.weight, 0.0, 0.01)
        self.head_bias = nn.Parameter(self._initial_head_bias())
        self.log_scale_h = nn.Parameter(torch.tensor(math.log(1 / 32)))
        self.log_scale_u = nn.Parameter(torch.full((cfg.blocks,), math.log(1 / 32)))
        if cfg.posterior:  # at 0: each channel's mixture weights its own (a model grown to it codes as before)
            k = cfg.components
            self.posterior = nn.Parameter(torch.zeros(len(POSTERIOR_PAIRS), k, k))
        if cfg.coupling:  # its outputs at 0: a model grown to it codes as before
            self.coupling = CouplingNet(cfg.components, cfg.coupling)
        if cfg.neighbours:  # its outputs at 0 too
            self.neighbours = NeighbourNet(cfg.components, cfg.neighbours, cfg.neighbour_reach)

    def posterior_weights(self) -> Tensor:
        """The posterior weights on their integer grid (``mixture.POSTERIOR_GRID``), straight-through."""
        return torch.clamp(round_ste(self.posterior * POSTERIOR_GAIN), -POSTERIOR_MAX, POSTERIOR_MAX)

    def _initial_head_bias(self) -> Tensor:
        k = self.cfg.components
        bias = torch.zeros(len(self.cfg.groups), 3, k)  # blends start at 0: the network's means
        bias[1] = 1.0                                       # means start at mid-grey
        bias[1] += torch.linspace(-0.5, 0.5, k)             # spread components apart
        bias[2] = 2.0                                       # wide scales at first
        return bias.flatten()

    @staticmethod
    def pixel_input(x: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) → the first layer's input (x − 128, border flag 127), scaled."""
        flag = torch.full_like(x[:, :1], 127, dtype=torch.float32)
        return torch.cat([x.float() - 128, flag], 1) * INPUT_SCALE

    def forward(self, x: Tensor) -> Tensor:
        a = self.pixel_input(x).contiguous(memory_format=MEMORY_FORMAT)
        s_h = self.log_scale_h
        top = self.cfg.stream_max
        h = fake_quant_act(self.first(a, INPUT_SCALE), s_h, top)
        for conv, mix, s_u in zip(self.convs, self.mixes, self.log_scale_u):
            u = fake_quant_act(conv(h, torch.exp(s_h)), s_u)
            v = mix(u, torch.exp(s_u))
            scale = torch.exp(s_h)
            h = torch.clamp(h / scale + round_ste(v / scale), 0, top) * scale
        # Each head term is rounded onto the parameter grids on its own, as the integer model does.
        groups = self.cfg.groups
        z = round_head(self.head(h, torch.exp(s_h)), groups) + round_head(self.skip(a, INPUT_SCALE), groups)
        return clamp_head(z + round_head(self.head_bias.view(1, -1, 1, 1), groups), groups)

    def nll(self, x: Tensor) -> Tensor:
        """Per-subpixel negative log-likelihood in nats, (B, 3, H, W)."""
        predicted = None
        if self.cfg.blend:
            predicted = predictor.image_predictions(pixel_codes(x.permute(0, 2, 3, 1)))
        posterior = self.posterior_weights() if self.cfg.posterior else None
        coupling = self.coupling if self.cfg.coupling else None
        params = self(x)
        around = None
        if self.cfg.neighbours:
            with torch.no_grad():
                told = unmoved_told(params, x, self.cfg.components, predicted)
            around = self.neighbours(told)
        return mixture_nll(params, x, self.cfg.components, predicted, posterior, coupling, around)


def _widens(trained: torch.Size, fresh: torch.Size) -> bool:
    """Whether a layer's weights or biases of shape ``fresh`` have a ``trained`` one's units and
    inputs and more of either (its first two dimensions larger, the rest the same)."""
    return (trained != fresh and len(trained) == len(fresh) and trained[2:] == fresh[2:]
            and all(t <= f for t, f in zip(trained[:2], fresh[:2])))


def _widened(trained: Tensor, fresh: Tensor) -> Tensor:
    """A layer (``fresh``, freshly initialised) grown from its ``trained`` one to more units or
    inputs: the trained entries in place and the trained units reading the new inputs with zero
    weights, so that they compute what they did; new units read everything freshly (whatever
    reads them starts at zero weights, being grown the same way)."""
    out = fresh.clone()
    if out.dim() >= 2:
        out[:trained.shape[0], trained.shape[1]:] = 0
    out[tuple(slice(0, n) for n in trained.shape)] = trained
    return out


def grown(state: dict[str, Tensor], cfg: ModelConfig, stream_max: int = STREAM_MAX[0]) -> dict[str, Tensor]:
    """A trained model's state dict (its stream's grid 0…``stream_max``) for ``cfg``, which may
    have more residual blocks, wider blocks, add the blend group or a finer stream, so that the
    grown model computes what the trained one did and training starts from there: the blocks it
    lacks start as identities (their 1×1 mix at zero adds nothing to the stream), a block's new
    inner channels start as freshly initialised convolution outputs that its mix reads with
    zero weights, a neighbour net's new sides as inputs its hidden layer reads with zero
    weights (they come last: ``neighbours.sides``), a small net's new hidden units (coupling or
    neighbour net) fresh but read with zero weights, the blend outputs at 0 (the network's own
    means), from weights too small to round to anything but 0 (not zeros: a row of zero weights
    has no int8 scale); a finer stream keeps its range, its scale divided as its grid is, so it
    rounds to the old grid's points and the ones between them."""
    fresh = PixelCNN(cfg).state_dict()
    blocks = state["log_scale_u"].numel()
    if blocks > cfg.blocks:
        raise ValueError(f"the trained model has {blocks} blocks, more than the {cfg.blocks} asked for")
    head = state["head_bias"].numel()
    if head > cfg.params_per_pixel:
        raise ValueError(f"the trained model has {head} head outputs, more than the {cfg.params_per_pixel} of {cfg}")
    out = {}
    for key, value in fresh.items():
        if key == "log_scale_u":
            value = torch.cat([state[key], value[blocks:]])
        elif key in ("head.weight", "skip.weight", "head_bias") and state[key].shape[0] < value.shape[0]:
            added = torch.randn_like(value[head:]) * 1e-6 if key != "head_bias" else torch.zeros_like(value[head:])
            value = torch.cat([state[key], added])
        elif key.startswith(("convs.", "mixes.", "coupling.", "neighbours.")) and key in state \
                and _widens(state[key].shape, value.shape):
            value = _widened(state[key], value)
        elif key == "log_scale_h":
            value = state[key] + math.log((stream_max + 1) / (cfg.stream_max + 1))
        elif key in state:
            if state[key].shape != value.shape:
                raise ValueError(f"{key}: trained shape {tuple(state[key].shape)}, "
                                 f"but {tuple(value.shape)} for {cfg}")
            value = state[key]
        elif key.startswith("mixes.") and not key.endswith(".mask"):
            value = torch.zeros_like(value)
        out[key] = value
    return out
