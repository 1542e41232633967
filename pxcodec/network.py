"""The integer PixelCNN: the same layers as ``model.PixelCNN``, in exact integer arithmetic.

Two ways to run it, giving identical integers (DESIGN C1, C2):

* ``band_params`` — the encoder's way: every pixel of a band of rows at once, layer by layer,
  from the band's pixels plus ``config.context_rows`` rows of context above it (or in two
  parts, ``band_trunk`` and ``head_params``, so the head can be fitted to the band between);
* ``Wavefront`` — the decoder's way: only the pixels of one wavefront step, reading the
  activations of earlier steps from small per-layer caches of ``cache_rows`` rows (row ``y``
  lives in slot ``y mod cache_rows``), so decoder memory does not grow with the image height.
  On the CPU each layer's gather, requantisation and residual around its GEMM, the head's
  requantisation and clamp, and the blend's predictions are compiled loops (numba) instead of
  several torch calls on a step's few hundred pixels.
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numba
import numpy as np
import torch
from torch import Tensor

from . import predictor
from .config import BLOCK_TAPS, ModelConfig, Tap
from .coupling import IntegerCoupling
from .errors import CertificateError
from .intops import Gemm, IntLayer, cpu_kernels, disable_tf32
from .mixture import IntegerMixture
from .neighbours import IntegerNeighbours


def pixel_codes(rgb: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """uint8 (…, 3) pixels → int8 (…, 4) first-layer input: x − 128 and the in-image flag 127.
    Tensors or numpy arrays (the decoder's few pixels a step: far less overhead than torch)."""
    if isinstance(rgb, np.ndarray):
        codes = np.full((*rgb.shape[:-1], 4), 127, dtype=np.int8)
        codes[..., :3] = (rgb ^ 128).view(np.int8)  # x − 128: x with its top bit flipped, as int8
        return codes
    flag = torch.full((*rgb.shape[:-1], 1), 127, dtype=torch.int16, device=rgb.device)
    return torch.cat([rgb.to(torch.int16) - 128, flag], -1).to(torch.int8)


#: A tile's feature gain k (format version 8) scales the head's input feature by (GAIN_UNIT + k) /
#: GAIN_UNIT, rounded to an integer: k is −GAIN_UNIT…GAIN_UNIT − 1, so gains run from 0 to
#: almost 2 and a scaled feature (at most 255) stays an integer below 2^9.
GAIN_UNIT = 64


def gained_max(top: int) -> int:
    """The largest scaled feature of features 0…``top``: floor((top · (2 · GAIN_UNIT − 1) +
    GAIN_UNIT / 2) / GAIN_UNIT)."""
    return (top * (2 * GAIN_UNIT - 1) + GAIN_UNIT // 2) // GAIN_UNIT


def gained(h: Tensor, gains: Tensor) -> Tensor:
    """Features h (n, C) scaled by gains k (C,) or (n, C): floor((h·(GAIN_UNIT + k) + GAIN_UNIT/2)
    / GAIN_UNIT) as float32, exact (every value is an integer below 2^15, and the division is by a
    power of two); gains of 0 give h itself."""
    return (h * (gains + GAIN_UNIT)).add_(GAIN_UNIT // 2).div_(GAIN_UNIT).floor_()


class Trunk(NamedTuple):
    """What the head reads of a band's pixels (raster order): the last block's features (n, C)
    uint8 and the first layer's skip term (n, P) float32."""

    features: Tensor
    skip: Tensor


class IntegerPixelCNN:
    """Integer weights bound to certified kernels on one device."""

    #: Most pixels one encoder GEMM covers (bounds memory on wide images, not the result).
    GEMM_PIXELS = 32768

    def __init__(self, config: ModelConfig, layers: dict[str, IntLayer], head_bias: Tensor,
                 param_lo: Tensor, param_hi: Tensor, tables: dict, kernel: str = "auto",
                 device: str | torch.device = "cpu", posterior: np.ndarray | None = None,
                 coupling: IntegerCoupling | None = None, neighbours: IntegerNeighbours | None = None):
        self.cfg = config
        self.device = torch.device(device)
        if self.device.type == "cuda":
            disable_tf32()
        self.kernel = kernel
        on = {name: layer.to(self.device) for name, layer in layers.items()}
        for b in range(config.blocks):  # the blocks' convolutions read the residual stream, 0…stream_max
            on[f"conv{b}"] = replace(on[f"conv{b}"], unsigned=True)
        # The shipped first layer also computes the head's linear skip; split its channels so
        # the encoder computes each part only where it is needed.
        c = config.channels
        on["first+skip"] = on["first"]  # the decoder's: one GEMM per step for both parts
        on["first"], on["skip"] = on["first"].columns(0, c), on["first"].columns(c, on["first"].weight.shape[1])
        # The head reads features scaled by a tile's gains, beyond int8: the float32 kernel,
        # certified for them, whatever the other layers run.
        head = on.pop("head")
        self.gemms = {name: Gemm(layer, self._choose(layer, kernel, self.device)) for name, layer in on.items()}
        self.gemms["head"] = Gemm(replace(head, in_max=gained_max(head.in_max)), "float32")
        #: Each layer's requantisation as compiled loops take it (``_Requant``), on the CPU where
        #: every layer's is exact in float64 (the shipped models'): the encoder's bands and the
        #: decoder's steps run it in one pass over the outputs rather than several torch calls
        #: (a quarter of a one-core encode went to those); None on other devices.
        self.requants = ({name: _Requant.of(gemm) for name, gemm in self.gemms.items()}
                         if self.device.type == "cpu" and all(g.float64 is not None for g in self.gemms.values())
                         else None)
        self.head_bias = head_bias.to(self.device)
        self.param_lo = param_lo.to(self.device)
        self.param_hi = param_hi.to(self.device)
        self.mixture = IntegerMixture(tables, config.components, self.device, (self.param_lo, self.param_hi),
                                      posterior, coupling, neighbours)

    @staticmethod
    def _choose(layer: IntLayer, kernel: str, device: torch.device) -> str:
        """``auto`` picks, where certified, the kernel that multiplies faster on this device:
        on the CPU the one ``intops.cpu_kernels`` timed faster, on a GPU float32; else the
        other. Both give the same integers."""
        if kernel != "auto":
            return kernel
        first, second = cpu_kernels() if device.type == "cpu" else ("float32", "int8")
        try:
            layer.certify(first)
            return first
        except CertificateError:
            return second

    # -- shared layer sequence ------------------------------------------------------------
    def _requantise(self, name: str, acc: Tensor) -> Tensor:
        """Layer ``name``'s requantised, clamped outputs (float32 integers) of its accumulators."""
        if self.requants is None:
            return self.gemms[name].requantise(acc)
        return torch.from_numpy(self.requants[name].apply(acc))

    def layer(self, name: str, x: Tensor) -> Tensor:
        """Layer ``name``'s outputs (float32 integers) for inputs x (M, K)."""
        return self._requantise(name, self.gemms[name].accumulate(x))

    def _block(self, b: int, u: Tensor, h: Tensor) -> Tensor:
        """Block ``b`` after its masked convolution gave ``u``: 1×1 mix, residual, clamp."""
        return self.layer(f"mix{b}", u).add_(h).clamp_(0, self.cfg.stream_max)

    def _head(self, h: Tensor, skip: Tensor, gains: Tensor | None = None) -> Tensor:
        """Head parameters (n, P) int32 (all within the mixture's ranges) from the last block's
        output (float32), scaled by ``gains`` (C,) or (n, C) where there are any, and the skip term."""
        p = self.layer("head", h if gains is None else gained(h, gains))
        return p.add_(skip).add_(self.head_bias).clamp_(self.param_lo, self.param_hi).to(torch.int32)

    # -- encoder: whole bands -------------------------------------------------------------
    def band_params(self, rgb: Tensor, context: int, gains: Tensor | None = None) -> Tensor:
        """Head parameters (n, P) of rows ``context:`` of ``rgb`` (rows, W, 3) uint8, raster order,
        with the head's inputs scaled by ``gains`` (C,) where there are any.

        The first ``context`` rows are the band's context; with ``context < config.context_rows``
        they must start at the image's top row (zeros stand for what lies above the image).
        """
        return self.head_params(self.band_trunk(rgb, context), gains)

    def head_params(self, trunk: Trunk, gains: Tensor | None = None) -> Tensor:
        """Head parameters (n, P) int32 of a band's ``trunk``, its features scaled by ``gains``
        (C,) where there are any; GEMM_PIXELS at a time."""
        n, step = trunk.skip.shape[0], self.GEMM_PIXELS
        if not n:
            return torch.empty((0, self.cfg.params_per_pixel), dtype=torch.int32, device=self.device)
        return torch.cat([self._head(trunk.features[i:i + step].to(torch.float32), trunk.skip[i:i + step], gains)
                          for i in range(0, n, step)])

    def band_trunk(self, rgb: Tensor, context: int) -> Trunk:
        """The ``Trunk`` of rows ``context:`` of ``rgb`` (rows, W, 3) uint8 (as ``band_params``)."""
        rgb = rgb.to(self.device)
        rows, w, _ = rgb.shape
        a = pixel_codes(rgb)
        # Layer by layer over the whole band, but each GEMM over a block of at most GEMM_PIXELS
        # pixels, so memory stays bounded on wide images; activations are kept as bytes. The
        # head's skip term is computed after the last block rather than kept through them.
        step = max(1, self.GEMM_PIXELS // w)
        h = torch.empty((rows, w, self.cfg.channels), dtype=torch.uint8, device=self.device)

        def conv(name: str, x: Tensor, taps: tuple[Tap, ...], r0: int, r1: int) -> Tensor:
            return self._requantise(name, _conv(self.gemms[name], x, taps, r0, r1))

        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            h[r0:r1] = conv("first", a, self.cfg.first_taps, r0, r1).to(torch.uint8).view(r1 - r0, w, -1)
        for b in range(self.cfg.blocks):
            new = torch.empty_like(h)
            for r0 in range(0 if b + 1 < self.cfg.blocks else context, rows, step):
                r1 = min(rows, r0 + step)
                here = h[r0:r1].reshape(-1, self.cfg.channels)
                u = conv(f"conv{b}", h, BLOCK_TAPS, r0, r1)
                new[r0:r1] = self._block(b, u, here).to(torch.uint8).view(r1 - r0, w, -1)
            h = new
        skip = [conv("skip", a, self.cfg.first_taps, r0, min(rows, r0 + step)) for r0 in range(context, rows, step)]
        p = self.cfg.params_per_pixel
        return Trunk(h[context:].reshape(-1, self.cfg.channels),
                     torch.cat(skip) if skip else torch.empty((0, p), dtype=torch.float32, device=self.device))

    def band_predictions(self, rgb: Tensor, context: int) -> Tensor:
        """``predictor.predictions`` (n, 3) int32 of rows ``context:`` of ``rgb`` (rows, W, 3)
        uint8, raster order, read as ``band_params`` reads the band (zeros above its first row)."""
        codes = pixel_codes(rgb.to(self.device))
        return predictor.image_predictions(codes[None])[0, context:].reshape(-1, 3)

    # -- decoder: one wavefront step at a time -------------------------------------------
    def wavefront(self, width: int, lanes: int = 1) -> "Wavefront":
        return Wavefront(self, width, lanes)


def _conv(gemm: Gemm, a: Tensor, taps: tuple[Tap, ...], r0: int, r1: int) -> Tensor:
    """``gemm``'s accumulators (n·W, N) over the taps of rows [r0, r1) of (H, W, C) activations,
    zeros standing for what lies outside the array.

    The rows (with the rows above that the taps reach) are zero-padded and flattened; then every
    tap is one contiguous slice of that buffer, so the convolution is a sum of plain GEMMs and
    no im2col matrix is built. Outputs at the padding columns are computed and dropped.
    """
    _, w, c = a.shape
    r = max(max(-dy, abs(dx)) for dy, dx in taps)
    wp, n = w + 2 * r, r1 - r0
    padded = torch.zeros((n + r, wp, c), dtype=a.dtype, device=a.device)
    above = min(r, r0)
    padded[r - above:, r:r + w] = a[r0 - above:r1]
    length = (n - 1) * wp + w
    acc = gemm.accumulate_taps(padded.view(-1, c), [r + (r + dy) * wp + dx for dy, dx in taps], length)
    n_out = acc.shape[1]
    return acc.as_strided((n, w, n_out), (wp * n_out, n_out, 1)).reshape(n * w, n_out)


class Wavefront:
    """Decoder-side caches and the per-step trunk of ``IntegerPixelCNN`` (DESIGN C2, C3).

    The caches serve ``lanes`` runs of rows at once: a lane is decoded as an image of its own
    (an independent band of rows, or the whole image), with its own ``rows`` cache rows, so
    the pixels of several lanes share each wavefront step and its GEMMs.
    """

    def __init__(self, net: IntegerPixelCNN, width: int, lanes: int = 1):
        cfg = net.cfg
        self.net = net
        self.pad = cfg.first_kernel // 2
        self.rows = cfg.first_kernel // 2 + 2
        self.wp = width + 2 * self.pad
        dev = net.device
        self.inputs = torch.zeros((lanes * self.rows * self.wp, 4), dtype=torch.int8, device=dev)
        self.levels = [torch.zeros((lanes * self.rows * self.wp, cfg.channels), dtype=torch.uint8, device=dev)
                       for _ in range(cfg.blocks)]
        #: (dy, dx) arrays of the first layer's and the blocks' taps.
        self.first_taps, self.block_taps = (tuple(np.array(v) for v in zip(*taps))
                                            for taps in (cfg.first_taps, BLOCK_TAPS))
        #: Which of the first layer's taps are a pixel's W, N and NW neighbours (``predictions``).
        self.neighbours = [cfg.first_taps.index(tap) for tap in ((0, -1), (-1, 0), (-1, -1))]
        #: On the CPU, with GEMMs whose requantisation is exact in float64 (the shipped models'),
        #: a step runs as compiled loops around torch's GEMMs (``_compiled_params``): each
        #: layer's gather (into the kernel's input dtype), requantisation, residual and cache
        #: write (and the head's gains, skip and clamp) in one pass over its pixels rather than
        #: several torch calls, and the predictions likewise. Any other device runs the torch ops.
        self.compiled = net.requants is not None
        if self.compiled:
            self._inputs_np = self.inputs.numpy()
            self._levels_np = [level.numpy() for level in self.levels]
            self._head_bounds = tuple(v.double().numpy() for v in (net.head_bias, net.param_lo, net.param_hi))

    @staticmethod
    def lane_bytes(cfg: ModelConfig, width: int) -> int:
        """Cache bytes one lane of ``width`` pixels needs (input codes and every level's
        activations), without allocating them."""
        rows, pad = cfg.first_kernel // 2 + 2, cfg.first_kernel // 2
        return rows * (width + 2 * pad) * (4 + cfg.channels * cfg.blocks)

    def locate(self, lanes: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> Cells:
        """The cache rows of one step's pixels (ys, xs), rows counted within each pixel's lane,
        computed once (in numpy: far less per-call overhead than torch on a step's few pixels)
        for ``params`` and ``put_pixels``."""
        rows = lanes * self.rows
        here = (rows + ys % self.rows) * self.wp + xs + self.pad

        def taps(dy: np.ndarray, dx: np.ndarray) -> Tensor:
            flat = (rows[:, None] + (ys[:, None] + dy) % self.rows) * self.wp + (xs[:, None] + dx + self.pad)
            return torch.from_numpy(flat.reshape(-1)).to(self.net.device)
        return Cells(torch.from_numpy(here).to(self.net.device), taps(*self.first_taps), taps(*self.block_taps))

    def params(self, cells: Cells, gains: Tensor | None = None) -> Tensor:
        """Head parameters (n, P) of a step's pixels (``locate``), their head's inputs scaled by
        ``gains`` (n, C) where there are any; every earlier step must be complete."""
        return self._params(cells, gains, False)[0]

    def params_and_unadapted(self, cells: Cells, gains: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``params`` and the parameters without the gains (what a neighbour net reads): one
        more head GEMM where there are gains, none where there are not."""
        params, unadapted = self._params(cells, gains, True)
        return params, params if unadapted is None else unadapted

    def _params(self, cells: Cells, gains: Tensor | None, unadapted: bool) -> tuple[Tensor, Tensor | None]:
        """``params`` and, if ``unadapted`` and there are ``gains``, the parameters without them."""
        if self.compiled:
            return self._compiled_params(cells, gains, unadapted)
        net, c = self.net, self.net.cfg.channels
        n = cells.here.shape[0]
        first = net.layer("first+skip", self.inputs.index_select(0, cells.first).view(n, -1))
        h, skip = first[:, :c], first[:, c:]
        self.levels[0].index_copy_(0, cells.here, h.to(torch.uint8))
        for b in range(net.cfg.blocks):
            u = net.layer(f"conv{b}", self.levels[b].index_select(0, cells.block).view(n, -1))
            h = net._block(b, u, h)
            if b + 1 < net.cfg.blocks:  # the last level is read only at the pixel itself
                self.levels[b + 1].index_copy_(0, cells.here, h.to(torch.uint8))
        plain = net._head(h, skip) if unadapted and gains is not None else None
        return net._head(h, skip, gains), plain

    def _compiled_params(self, cells: Cells, gains: Tensor | None, unadapted: bool) -> tuple[Tensor, Tensor | None]:
        """``_params`` through the compiled loops: the same integers (the tests compare the two)."""
        net, c = self.net, self.net.cfg.channels
        n, here = cells.here.shape[0], cells.here.numpy()
        gemms, layers = net.gemms, net.requants
        first = layers["first+skip"].apply(_gathered(gemms["first+skip"], self._inputs_np, cells.first.numpy(), n))
        h = np.ascontiguousarray(first[:, :c])
        _store(h, self._levels_np[0], here)
        block = cells.block.numpy()
        for b in range(net.cfg.blocks):
            u = layers[f"conv{b}"].apply(_gathered(gemms[f"conv{b}"], self._levels_np[b], block, n))
            out = np.empty_like(h)
            store = b + 1 < net.cfg.blocks  # the last level is read only at the pixel itself
            _residual(gemms[f"mix{b}"].accumulate(torch.from_numpy(u)).numpy(), *layers[f"mix{b}"], net.cfg.stream_max, h, out,
                      self._levels_np[b + 1 if store else b], here, store)
            h = out

        def head(features: np.ndarray) -> Tensor:
            params = np.empty((n, net.cfg.params_per_pixel), dtype=np.int32)
            _head(gemms["head"].accumulate(torch.from_numpy(features)).numpy(), *layers["head"], first[:, c:],
                  *self._head_bounds, params)
            return torch.from_numpy(params)

        plain = head(h) if unadapted and gains is not None else None
        if gains is not None:
            _gained(h, gains.numpy(), h)
        return head(h), plain

    def predictions(self, cells: Cells) -> np.ndarray:
        """``predictor.predictions`` (n, 3) int32 of a step's pixels, from the decoded pixels
        their first layer reads: a compiled loop where the step is compiled, else in numpy, as
        the decoder's mixture runs (a fraction of torch's per-call overhead on a step's few
        pixels)."""
        n = cells.here.shape[0]
        if self.compiled:
            out = np.empty((n, 3), dtype=np.int32)
            _predictions(self._inputs_np, cells.first.numpy().reshape(n, -1), *self.neighbours, out)
            return out
        at = cells.first.view(n, -1)[:, self.neighbours].reshape(-1)
        codes = self.inputs.index_select(0, at).cpu().numpy().reshape(n, 3, -1)
        return predictor.predictions(codes[:, 0], codes[:, 1], codes[:, 2])

    def put_pixels(self, cells: Cells, rgb: np.ndarray) -> None:
        """Record a step's decoded pixels (n, 3) uint8 so later steps can read them."""
        self.inputs.index_copy_(0, cells.here, torch.from_numpy(pixel_codes(rgb)).to(self.net.device))


class _Requant(NamedTuple):
    """One layer's requantisation as the compiled loops take it: clamp(floor(acc · mult +
    offset), lo, hi) in float64, exact (``intops.Gemm.float64``)."""

    offset: np.ndarray
    mult: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, gemm: Gemm) -> "_Requant":
        offset, mult = gemm.float64
        return cls(offset.numpy(), mult.numpy(), gemm.lo.double().numpy(), gemm.hi.double().numpy())

    def apply(self, acc: Tensor) -> np.ndarray:
        """The layer's float32 outputs (n, N) of its GEMM's accumulators ``acc`` (n, N), float32
        or int32."""
        out = np.empty(tuple(acc.shape), dtype=np.float32)
        _requantise(acc.numpy(), *self, out)
        return out


def _gathered(gemm: Gemm, cache: np.ndarray, taps: np.ndarray, n: int) -> Tensor:
    """``gemm``'s accumulators (n, N) of rows ``taps`` (n · T,) of a byte cache (rows, C): its
    (n, T · C) input gathered as the kernel multiplies it (``Gemm.prepare``)."""
    out = np.empty((n, taps.size // n * cache.shape[1]), dtype=np.float32 if gemm.dtype == torch.float32 else np.int8)
    _gather(cache, taps, gemm.in_shift, out)
    return gemm.multiply(torch.from_numpy(out))


@numba.njit(cache=True, nogil=True)
def _gather(cache, taps, shift, out):
    """Row ``taps[r]`` of the byte ``cache``, less ``shift``, into tap ``r mod T`` of pixel
    ``r // T`` of ``out`` (float32 or int8)."""
    c, per = cache.shape[1], taps.size // out.shape[0]
    for r in range(taps.size):
        row, dst = cache[taps[r]], out[r // per, (r % per) * c:(r % per + 1) * c]
        for j in range(c):
            dst[j] = np.int16(row[j]) - shift


@numba.njit(cache=True, nogil=True)
def _requantised(acc, offset, mult, lo, hi):
    """One output of ``intops.Gemm.requantise``, in float64 as exactly (``_Requant``)."""
    return min(max(np.floor(acc * mult + offset), lo), hi)


@numba.njit(cache=True, nogil=True)
def _requantise(acc, offset, mult, lo, hi, out):
    """``intops.Gemm.requantise`` of accumulators (n, N), float32 or int32, into ``out``."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[i, j] = _requantised(acc[i, j], offset[j], mult[j], lo[j], hi[j])


@numba.njit(cache=True, nogil=True)
def _residual(acc, offset, mult, lo, hi, top, h, out, cache, here, store):
    """A block's end: its 1×1 mix requantised, plus the block's input ``h``, clamped to 0…top,
    into ``out`` and (``store``) into the next level's cache rows ``here``."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[i, j] = min(max(_requantised(acc[i, j], offset[j], mult[j], lo[j], hi[j]) + h[i, j], 0.0), top)
    if store:
        _store(out, cache, here)


@numba.njit(cache=True, nogil=True)
def _gained(h, gains, out):
    """``gained`` of features h (n, C) by per-pixel gains (n, C), into ``out``."""
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            out[i, j] = np.floor((h[i, j] * (gains[i, j] + GAIN_UNIT) + GAIN_UNIT // 2) / GAIN_UNIT)


@numba.njit(cache=True, nogil=True)
def _head(acc, offset, mult, lo, hi, skip, bias, param_lo, param_hi, out):
    """``IntegerPixelCNN._head`` after its GEMM: the accumulators (n, P) requantised, plus the
    skip term and the bias, clamped to the parameters' ranges, into ``out`` (n, P) int32."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            value = _requantised(acc[i, j], offset[j], mult[j], lo[j], hi[j]) + skip[i, j] + bias[j]
            out[i, j] = np.int32(min(max(value, param_lo[j]), param_hi[j]))


@numba.njit(cache=True, nogil=True)
def _med(west, north, north_west):
    """``predictor.med`` of three numbers."""
    lo, hi = min(west, north), max(west, north)
    return lo if north_west >= hi else hi if north_west <= lo else west + north - north_west


@numba.njit(cache=True, nogil=True)
def _predictions(inputs, taps, west, north, north_west, out):
    """``predictor.predictions`` (n, 3) of the pixels whose first-layer taps are rows ``taps``
    (n, T) of the pixel codes ``inputs``, tap indices ``west``, ``north``, ``north_west`` their
    neighbours: MED of R, of G − R and of B − G, R's a level."""
    for i in range(out.shape[0]):
        w, n, nw = inputs[taps[i, west]], inputs[taps[i, north]], inputs[taps[i, north_west]]
        out[i, 0] = _med(np.int32(w[0]), np.int32(n[0]), np.int32(nw[0])) + 128
        for c in range(1, 3):
            out[i, c] = _med(np.int32(w[c]) - w[c - 1], np.int32(n[c]) - n[c - 1], np.int32(nw[c]) - nw[c - 1])


@numba.njit(cache=True, nogil=True)
def _store(values, cache, here):
    """Activations ``values`` (n, C), integers 0…255, into the byte ``cache`` rows ``here`` (n,)."""
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            cache[here[i], j] = np.uint8(values[i, j])


class Cells(NamedTuple):
    """Flat cache rows of one wavefront step: its pixels', and the taps they read (n · taps,)."""

    here: Tensor
    first: Tensor
    block: Tensor
