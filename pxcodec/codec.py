"""Encoding and decoding of 8-bit RGB pixels: the model, the schedule and the coder together.

The encoder computes head parameters for a band of rows in one batch (``batch_rows`` at a time,
which changes speed and memory, never the bytes), turns them into integer PMFs chunk by chunk
in the band's stream order, and codes them. The decoder walks the wavefront step by step,
rebuilding the identical PMFs from what it has decoded so far.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import container, weights
from .coder import StreamDecoder, StreamEncoder
from .errors import CorruptError
from .network import IntegerPixelCNN
from .schedule import band_symbol_order, step_count, step_rows

#: Rows per independently coded stream (a format parameter, recorded in each file).
STREAM_ROWS = 128
#: Rows the encoder runs through the network at once (speed and memory only).
BATCH_ROWS = 64
#: Pixels whose PMFs the encoder materialises at once.
PMF_CHUNK = 4096

Progress = Callable[[int, int], None]


@dataclass
class Encoded:
    """A .pxc file and the model's ideal code length of its pixels, −Σ log2 p, in bits."""

    data: bytes
    ideal_bits: float


def _band_params(net: IntegerPixelCNN, rgb: torch.Tensor, y0: int, y1: int, batch_rows: int) -> torch.Tensor:
    """Head parameters (n, P) int32 of rows [y0, y1), in raster order, batch by batch."""
    ctx = net.cfg.context_rows
    parts = []
    for yb in range(y0, y1, batch_rows):
        ye = min(y1, yb + batch_rows)
        c0 = max(0, yb - ctx)
        parts.append(net.band_params(rgb[c0:ye], yb - c0).to(torch.int32))
    return torch.cat(parts)


def _chunks(steps: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Cut sorted ``steps`` into runs of about ``size`` items, never splitting a step."""
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    cuts = [0]
    for s in starts:
        if s - cuts[-1] >= size:
            cuts.append(int(s))
    cuts.append(steps.size)
    return list(zip(cuts[:-1], cuts[1:]))


def channel_pmfs(net: IntegerPixelCNN, params: torch.Tensor, pixels: torch.Tensor) -> list[torch.Tensor]:
    """The (n, 256) integer PMFs of R, G and B of pixels whose values are known (encoder side)."""
    p = params.to(torch.int64)
    return [net.mixture.pmf(*net.mixture.channel(p, c, pixels)) for c in range(3)]


def encode_rgb(rgb: np.ndarray, model: weights.ModelFile | None = None, *, device: str = "cpu",
               kernel: str = "auto", batch_rows: int = BATCH_ROWS, stream_rows: int = STREAM_ROWS,
               progress: Progress | None = None) -> Encoded:
    """Code an (H, W, 3) uint8 array; returns the .pxc bytes and the ideal code length."""
    model = model or weights.by_name()
    net = weights.load(model, kernel, device)
    h, w, _ = rgb.shape
    r = net.cfg.reach_right
    img = torch.from_numpy(np.ascontiguousarray(rgb))
    streams, ideal = [], 0.0
    for y0 in range(0, h, stream_rows):
        y1 = min(h, y0 + stream_rows)
        params = _band_params(net, img, y0, y1, batch_rows)
        band = img[y0:y1].reshape(-1, 3).to(torch.int64)
        order, steps, positions = band_symbol_order(y0, y1, w, r)
        enc = StreamEncoder()
        for a, b in _chunks(steps, PMF_CHUNK):
            idx = torch.from_numpy(order[a:b])
            x = band[idx].to(net.device)
            pmfs = channel_pmfs(net, params[idx.to(params.device)], x)
            pos = positions[:, a:b] - 3 * a
            symbols = np.empty(3 * (b - a), dtype=np.int64)
            table = np.empty((3 * (b - a), 256), dtype=np.int64)
            for c, pmf in enumerate(pmfs):
                pmf = pmf.cpu().numpy()
                symbols[pos[c]] = x[:, c].cpu().numpy()
                table[pos[c]] = pmf
            mass = np.take_along_axis(table, symbols[:, None], 1)[:, 0]
            ideal -= float(np.log2(mass / table.sum(1)).sum())
            enc.encode(symbols, table)
        streams.append(enc.finish())
        if progress:
            progress(y1, h)
    header = container.Header(model.fingerprint, w, h, "RGB", stream_rows, zlib.crc32(img.numpy().tobytes()))
    return Encoded(container.pack(header, streams), ideal)


def decode_rgb(data: bytes, *, device: str = "cpu", kernel: str = "auto",
               progress: Progress | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of a .pxc file, verified against its pixel checksum."""
    header, streams = container.unpack(data)
    net = weights.load(weights.by_fingerprint(header.fingerprint), kernel, device)
    h, w = header.height, header.width
    r = net.cfg.reach_right
    decoders = [StreamDecoder(s) for s in streams]
    wave = net.wavefront(w)
    out = torch.zeros((h, w, 3), dtype=torch.uint8)
    total = step_count(h, w, r)
    every = max(1, total // 100)
    for t in range(total):
        y0, y1 = step_rows(t, h, w, r)
        if y0 >= y1:  # images narrower than r + 1 columns have empty steps
            continue
        ys = torch.arange(y0, y1, device=net.device)
        xs = t - (r + 1) * ys
        params = wave.params(ys, xs)
        segments = _segments(y0, y1, header.stream_rows)
        known = torch.zeros((y1 - y0, 3), dtype=torch.int64, device=net.device)
        for c in range(3):
            pmf = net.mixture.pmf(*net.mixture.channel(params, c, known)).cpu().numpy()
            col = np.concatenate([decoders[band].decode(pmf[a:b]) for band, a, b in segments])
            known[:, c] = torch.from_numpy(col).to(net.device)
        rgb = known.to(torch.uint8)
        wave.put_pixels(ys, xs, rgb)
        out[ys.cpu(), xs.cpu()] = rgb.cpu()
        if progress and (t % every == 0 or t == total - 1):
            progress(t + 1, total)
    pixels = out.numpy()
    if zlib.crc32(pixels.tobytes()) != header.pixel_crc:
        raise CorruptError("decoded pixels do not match the file's checksum")
    return pixels


def _segments(y0: int, y1: int, stream_rows: int) -> list[tuple[int, int, int]]:
    """(band, start, end) runs of the rows [y0, y1) of one step, by stream band."""
    out = []
    y = y0
    while y < y1:
        band = y // stream_rows
        end = min(y1, (band + 1) * stream_rows)
        out.append((band, y - y0, end - y0))
        y = end
    return out


def bits_per_subpixel(nbytes: int, width: int, height: int) -> float:
    return 8 * nbytes / (3 * width * height)
