"""Exact integer layer arithmetic: certified GEMM kernels and per-channel requantisation.

A layer computes ``clamp((x @ W + b) · M + 2^(S−1) >> S, lo, hi)`` on small integers. Two GEMM
kernels are offered; both give the same integers whenever their certificate holds:

* ``int8``: ``torch._int_mm`` (int8 × int8 → int32), exact while every |partial sum| < 2^31;
  a layer whose inputs are unsigned bytes (0…255: an 8-bit residual stream) multiplies x − 128,
  and its requantisation adds 128 · Σ_k W[k, n] back with the bias, exactly;
* ``float32``: a float GEMM on integer values, exact while every |partial sum| < 2^24, i.e. on
  any BLAS, thread count, batch shape or device (TF32 is disabled on CUDA).

The certificate bounds every partial sum by ``Σ|w|·max|x|`` per output channel, from the
weights alone, when a layer is built. A kernel whose bound fails is refused (DESIGN C1). The
same bound decides how requantisation runs: in float64, a few SIMD-friendly passes, where every
``(acc + b)·M + 2^(S−1)`` is certified below 2^53 (so each step is exact), else in int64.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import CertificateError

KERNELS = ("int8", "float32")
#: Largest partial sum magnitude each kernel represents exactly.
EXACT_LIMIT = {"int8": 2**31 - 1, "float32": 2**24}
#: What an unsigned byte input is moved by to fit the int8 kernel.
UNSIGNED_SHIFT = 128
#: Requantisation products must stay below this in int64, and below this to run in float64.
INT64_SAFE = 2**62
FLOAT64_EXACT = 2**53


#: A decoder step's GEMM, (rows, K) @ (K, N): the product ``cpu_kernels`` times.
PROBE_SHAPE = (512, 576, 128)


@functools.cache
def cpu_kernels() -> tuple[str, str]:
    """The CPU kernels, the faster first, timed once per process on ``PROBE_SHAPE`` (best of
    three). Neither is always faster: oneDNN's int8 GEMMs ran 5–7 times as fast as float32's on
    a CPU with VNNI and AMX, and ``torch._int_mm`` 26 times as slow on one with only AVX2. Both
    give the same integers, so the choice changes speed, never bytes."""
    m, k, n = PROBE_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=gen)
    w = torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=gen)
    xf, wf = x.float(), w.float()  # each kernel's own input dtype, as ``Gemm`` holds and gathers them
    runs: dict[str, Callable[[], Tensor]] = {"int8": lambda: torch._int_mm(x, w), "float32": lambda: xf @ wf}

    def seconds(run: Callable[[], Tensor]) -> float:
        run()  # warm-up: first calls pay for dispatch and packing
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best

    first, second = sorted(runs, key=lambda name: seconds(runs[name]))
    return first, second


def disable_tf32() -> None:
    """TF32 rounds float32 GEMM inputs to 10-bit mantissas on CUDA; the float kernel needs it off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def multiplier(ratio: float) -> tuple[int, int]:
    """(M, S) with M / 2^S ≈ ratio and 2^30 ≤ M < 2^31, for requantisation by a real ratio."""
    if not ratio > 0:
        raise ValueError(f"requantisation ratio must be positive, got {ratio}")
    s = 30
    while ratio * 2**s >= 2**31:
        s -= 1
    while ratio * 2**s < 2**30:
        s += 1
    m = round(ratio * 2**s)
    if m == 2**31:
        m, s = 2**30, s - 1
    return m, s


@dataclass
class IntLayer:
    """One integer linear layer over gathered inputs: weights (K, N) int8, per-channel rest."""

    weight: Tensor   # (K, N) int8
    bias: Tensor     # (N,) int64, in accumulator units
    mult: Tensor     # (N,) int64
    shift: Tensor    # (N,) int64
    lo: Tensor       # (N,) int64 clamp bounds of the requantised output
    hi: Tensor
    in_max: int      # largest |input| the layer may receive
    unsigned: bool = False  # whether its inputs are 0…in_max (a clamped stream's), not ±in_max

    def bound(self) -> Tensor:
        """Certificate: per output channel, the largest |partial sum| of x @ W."""
        return self.weight.abs().to(torch.int64).sum(0) * self.in_max

    def reach(self) -> Tensor:
        """Per output channel, the largest |requantised output| before clamping, on any input."""
        return ((self.bound() + self.bias.abs()) * self.mult + (1 << (self.shift - 1))) >> self.shift

    def certify(self, kernel: str) -> None:
        """Raise ``CertificateError`` unless ``kernel`` is exact for this layer on any input."""
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose from {KERNELS}")
        if self.weight.dtype != torch.int8 or self.weight.abs().max() > 127:
            raise CertificateError("weights are not int8")
        if kernel == "int8" and self.in_max > (2 * UNSIGNED_SHIFT - 1 if self.unsigned else UNSIGNED_SHIFT):
            raise CertificateError(f"inputs up to {self.in_max} are not int8")
        worst = int(self.bound().max())
        if worst >= EXACT_LIMIT[kernel]:
            raise CertificateError(f"{kernel} kernel not exact: partial sums reach {worst}, "
                                   f"limit {EXACT_LIMIT[kernel]}")
        acc = self.bound() + self.bias.abs()
        if int((acc * self.mult).max()) + int((1 << self.shift).max()) >= INT64_SAFE:
            raise CertificateError("requantisation could overflow int64")

    def columns(self, a: int, b: int) -> "IntLayer":
        """Output channels [a, b) as a layer of their own (requantisation is per channel)."""
        return IntLayer(self.weight[:, a:b], self.bias[a:b], self.mult[a:b], self.shift[a:b],
                        self.lo[a:b], self.hi[a:b], self.in_max, self.unsigned)

    def to(self, device: torch.device) -> "IntLayer":
        return IntLayer(*(t.to(device) for t in (self.weight, self.bias, self.mult, self.shift,
                                                   self.lo, self.hi)), self.in_max, self.unsigned)


class Gemm:
    """A certified kernel bound to one layer's weights, on one device."""

    #: Taps narrower than this are multiplied as one im2col GEMM (tiny-K GEMMs are slow).
    TAP_GEMM_MIN_K = 16

    def __init__(self, layer: IntLayer, kernel: str):
        layer.certify(kernel)
        self.layer = layer
        self.kernel = kernel
        w = layer.weight
        #: The input dtype the kernel multiplies (``prepare``), and what it subtracts from the
        #: inputs first: UNSIGNED_SHIFT where the int8 kernel takes unsigned bytes, whose
        #: products the requantisation adds back with the bias.
        self.dtype = torch.float32 if kernel == "float32" else torch.int8
        self.in_shift = UNSIGNED_SHIFT if kernel == "int8" and layer.unsigned and layer.in_max >= UNSIGNED_SHIFT else 0
        bias = layer.bias + w.to(torch.int64).sum(0) * self.in_shift
        # (acc + b)·M + 2^(S−1) as acc·M + offset: one fused op; the 2^(S−1) rounds to nearest.
        # The shifted inputs' sums and the shifted bias stay within the bound (in_max ≥ 128).
        self.offset = bias * layer.mult + (1 << (layer.shift - 1))
        worst = int(((layer.bound() + layer.bias.abs()) * layer.mult + (1 << (layer.shift - 1))).max())
        #: float64 requantisation where exact: (acc·M + offset)·2^−S as one addcmul with 2^−S
        #: folded into M and the offset (scaling by a power of two is exact, and every partial
        #: value is an integer below 2^53 times 2^−S, so no step rounds).
        self.float64 = None
        if worst < FLOAT64_EXACT:
            scale = torch.pow(2.0, -layer.shift.double())
            self.float64 = (self.offset.double() * scale, layer.mult.double() * scale)
        #: Whether the clamp can bind: skipped where the certificate shows it never does.
        self.clamps = bool((layer.lo >= -layer.reach()).any() or (layer.hi < layer.reach()).any())
        # Outputs are handed on as float32 and clamped after that conversion, which is monotonic:
        # the same as clamping before it where the outputs (so also any bound that binds) are
        # exact in float32.
        out_max = torch.minimum(layer.reach(), torch.maximum(layer.lo.abs(), layer.hi.abs()))
        if int(out_max.max()) >= EXACT_LIMIT["float32"]:
            raise CertificateError(f"layer outputs reach {int(out_max.max())}, not exact in float32")
        self.lo, self.hi = layer.lo.to(torch.float32), layer.hi.to(torch.float32)
        if kernel == "float32":
            self.w = w.to(torch.float32)
        elif w.is_cuda:  # cuBLAS int8 GEMM wants K and N multiples of 8 and more than 16 rows
            k, n = w.shape
            self.w = torch.zeros((-(-k // 8) * 8, -(-n // 8) * 8), dtype=torch.int8, device=w.device)
            self.w[:k, :n] = w
        else:
            self.w = w

    def prepare(self, x: Tensor) -> Tensor:
        """Inputs x (any integer or integral float dtype) as the kernel multiplies them
        (``multiply``): in its dtype, less ``in_shift``."""
        if self.in_shift:
            return (x.to(torch.int16) - self.in_shift).to(torch.int8)
        return x.to(self.dtype)

    def multiply(self, x: Tensor) -> Tensor:
        """``prepare``d inputs x (M, K) → x @ W, exactly, in the kernel's accumulator dtype
        (float32 or int32): the accumulators ``requantise`` takes."""
        if self.kernel == "float32":
            return x @ self.w
        if not x.is_cuda:
            return torch._int_mm(x, self.w)
        m, k = x.shape
        kp, n = self.w.shape
        xp = torch.zeros((max(m, 17), kp), dtype=torch.int8, device=x.device)
        xp[:m, :k] = x
        return torch._int_mm(xp, self.w)[:m, :self.layer.weight.shape[1]]

    def accumulate(self, x: Tensor) -> Tensor:
        """x (M, K) small integers (any integer or integral float dtype) → the accumulators
        ``requantise`` takes: x @ W, exactly, less in_shift · ΣW, in the kernel's accumulator
        dtype (float32 or int32)."""
        return self.multiply(self.prepare(x))

    def accumulate_taps(self, src: Tensor, offsets: list[int], length: int) -> Tensor:
        """Σ_t src[o_t : o_t + length] @ W_t, exactly, less in_shift · ΣW, in the kernel's
        accumulator dtype (as ``accumulate``), where W_t is the t-th block of ``src.shape[1]``
        weight rows: a convolution's GEMM without building its im2col matrix. Every partial sum
        is one the certificate bounds, so the order of the sum is free."""
        c = src.shape[1]
        src = self.prepare(src)
        if self.kernel != "float32" or c < self.TAP_GEMM_MIN_K:
            return self.multiply(torch.cat([src[o:o + length] for o in offsets], 1))
        acc = torch.zeros((length, self.w.shape[1]), dtype=torch.float32, device=src.device)
        for t, o in enumerate(offsets):
            acc.addmm_(src[o:o + length], self.w[t * c:(t + 1) * c])
        return acc

    def requantise(self, acc: Tensor) -> Tensor:
        """clamp((acc + b) · M + 2^(S−1) >> S, lo, hi) of accumulators, as float32 (the outputs
        are small integers, exact in float32, and the next GEMM's input dtype)."""
        if self.float64 is not None:
            offset, mult = self.float64
            out = torch.addcmul(offset, acc, mult).floor_()
        else:
            lay = self.layer
            out = torch.addcmul(self.offset, acc.to(torch.int64), lay.mult).bitwise_right_shift_(lay.shift)
        out = out.to(torch.float32)
        return out.clamp_(self.lo, self.hi) if self.clamps else out
