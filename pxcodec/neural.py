"""The neural coder: 8-bit colour or grey pixels through the model, the schedule and the coder.

The encoder computes head parameters for a band of rows in one batch (``batch_rows`` at a time,
which changes speed and memory, never the bytes), turns them into integer PMFs chunk by chunk
in the band's stream order, and codes them. The decoder walks the wavefront step by step,
rebuilding the identical PMFs from what it has decoded so far.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from . import adapt, neighbours, online, parallel, weights
from .adapt import Offsets
from .coder import StreamDecoder, StreamEncoder
from .container import VERSION
from .network import IntegerPixelCNN, Trunk, Wavefront
from .schedule import Tile, band_symbol_order, step_count, step_rows, stream_tiles
from .steps import StepMixture

#: Rows and columns of the tile each stream codes (format parameters, recorded in each file).
#: 256 rows rather than 128 since 2026-12-07: each tile's prefix and fitted offsets serve twice the
#: pixels, 0.21 % smaller files on Kodak-sized held-out crops for about 4 % more decode time
#: (``docs/RESULTS.md``, *Tile shape*).
STREAM_ROWS = 256
STREAM_COLS = 384
#: Rows the encoder runs through the network at once (speed and memory only).
BATCH_ROWS = 64
#: Pixels whose PMFs the encoder materialises at once.
PMF_CHUNK = 4096
#: Most band pixels the encoder works on at once, over all threads: bands are coded
#: concurrently only while they are narrow enough, so peak memory stays bounded (DESIGN C3).
PIXELS_IN_FLIGHT = 1 << 20
#: Most decoder cache bytes at once: independent bands beyond it are decoded group by group (C3).
LANE_CACHE_BYTES = 1 << 28

Progress = Callable[[int, int], None]


def _symbol_bits(pmf: np.ndarray, symbols: np.ndarray, total: np.ndarray) -> np.ndarray:
    """−log2 of the probability each (n, 256) integer PMF, summing to ``total`` (n,), gives its
    symbol (n,): the ideal code length."""
    return -np.log2(np.take_along_axis(pmf, symbols[:, None], 1)[:, 0] / total)


def _channel_bits(net: IntegerPixelCNN, pmfs: list[np.ndarray], logits: list[np.ndarray], symbols: np.ndarray
                  ) -> np.ndarray:
    """The ideal code lengths (n, channels) of pixels ``symbols`` (n, 3) under their channels'
    integer PMFs, from the logits (n, K) host arrays that fix what each PMF sums to."""
    return np.stack([_symbol_bits(pmf, symbols[:, c], net.mixture.totals(logits[c])) for c, pmf in enumerate(pmfs)], 1)


def _band_trunk(net: IntegerPixelCNN, rgb: torch.Tensor, y0: int, y1: int, batch_rows: int,
                independent: bool) -> tuple[Trunk, torch.Tensor | None]:
    """What the head reads (``network.Trunk``) of rows [y0, y1), in raster order, batch by batch,
    and the classical predictions (n, 3) of a model that blends towards them (else None); an
    independent band sees nothing above its first row (zeros, as above the image)."""
    ctx = net.cfg.context_rows
    parts = []
    for yb in range(y0, y1, batch_rows):
        ye = min(y1, yb + batch_rows)
        c0 = max(y0 if independent else 0, yb - ctx)
        parts.append(net.band_trunk(rgb[c0:ye], yb - c0))
    trunk = Trunk(*(torch.cat(v) for v in zip(*parts)))
    if not net.cfg.blend:
        return trunk, None
    c0 = max(y0 if independent else 0, y0 - 1)
    return trunk, net.band_predictions(rgb[c0:y1], y0 - c0)


def _chunks(steps: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Cut sorted ``steps`` into runs of about ``size`` items, never splitting a step."""
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    cuts = [0]
    for s in starts:
        if s - cuts[-1] >= size:
            cuts.append(int(s))
    cuts.append(steps.size)
    return list(zip(cuts[:-1], cuts[1:]))


def band_around(net: IntegerPixelCNN, trunk: Trunk, band: torch.Tensor, predicted: torch.Tensor | None,
                width: int) -> np.ndarray | None:
    """The neighbour net's moves (n, 3, 3, K) of a band's pixels (``neighbours.band_moves``,
    from the head's parameters before any of the stream's adaptation), or None for a model
    without one."""
    if net.mixture.neighbours is None:
        return None
    return neighbours.band_moves(net.mixture, net.head_params(trunk).cpu().numpy(), band.cpu().numpy(),
                                 None if predicted is None else predicted.cpu().numpy(), width)


def channel_params(net: IntegerPixelCNN, params: torch.Tensor, pixels: torch.Tensor, offsets: Offsets,
                   channels: int, predicted: torch.Tensor | None = None, around: np.ndarray | None = None
                   ) -> list[tuple]:
    """Each coded channel's logits, conditioned means and log-scales (n, K) of known pixels, with
    a tile's offsets (and the pixels' classical predictions, for a model that blends towards
    them, and the neighbour net's moves ``around``, for a model with one): numpy arrays on the
    CPU (smaller per-call overhead), tensors on the device elsewhere."""
    on_cpu = params.device.type == "cpu"
    p, x = (params.numpy(), pixels.numpy()) if on_cpu else (params, pixels.to(params.device))
    guess = predicted.cpu().numpy() if on_cpu and predicted is not None else predicted
    mixture = net.mixture
    p = mixture.moved_params(p, offsets.head_row(p.shape[1]))
    out: list[tuple] = []
    seen: list[np.ndarray] = []  # what each channel told, for a model whose later channels follow it
    for c in range(channels):
        out.append(mixture.channel(p, c, x, offsets.scale[c], offsets.mean[c], offsets.coef, guess, before=seen,
                                   around=around))
        if mixture.tells and c + 1 < channels:
            seen.append(mixture.told(*out[c], x[:, c]))
    return out


def channel_pmfs(net: IntegerPixelCNN, per_channel: list[tuple], idx: np.ndarray, learned: np.ndarray
                 ) -> list[np.ndarray]:
    """The (n, 256) integer PMFs of the pixels ``idx`` of ``channel_params``, their log-scales
    moved by the offsets (channels, all pixels) learned before each (``online``)."""
    pmfs = []
    for c, (logit, mean, logscale) in enumerate(per_channel):
        at, d = idx, learned[c, idx, None]
        if not isinstance(logit, np.ndarray):  # on the device: the indices and offsets go there
            at, d = (torch.from_numpy(v).to(logit.device) for v in (at, d))
        pmf = net.mixture.pmf(logit[at], *net.mixture.shift(mean[at], logscale[at], d, 0))
        pmfs.append(pmf if isinstance(pmf, np.ndarray) else pmf.cpu().numpy())
    return pmfs


def as_rgb(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) colour as is; (H, W) greyscale as R = G = B, the network's view of grey. A
    read-only array (``np.asarray`` of a Pillow image) is copied: torch only wraps writable ones."""
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, 2)
    return torch.from_numpy(np.require(rgb, requirements=("C", "W")))


class Chunk(NamedTuple):
    """The band's pixels at sorted (stream order) positions [a, b), with what coding them takes."""

    a: int
    b: int
    idx: np.ndarray          # their indices in the band (raster order)
    pixels: np.ndarray       # their values (n, 3)
    pmfs: list[np.ndarray]   # one (n, 256) integer PMF per coded channel
    bits: np.ndarray         # the ideal code lengths (n, channels) of their symbols


def _band_chunks(net: IntegerPixelCNN, img: torch.Tensor, y0: int, y1: int, channels: int,
                 batch_rows: int, independent: bool, fit: adapt.Effort) -> tuple[Offsets, Iterator[Chunk]]:
    """A band's adaptation offsets (found with the encoder's effort settings ``fit``), and its
    pixels in stream order, chunk by chunk."""
    w = img.shape[1]
    trunk, predicted = _band_trunk(net, img, y0, y1, batch_rows, independent)
    band = img[y0:y1].reshape(-1, 3).to(torch.int32)
    around = band_around(net, trunk, band, predicted, w)
    offsets = adapt.choose(net, trunk, band, channels, predicted, fit, around)
    params = net.head_params(trunk, offsets.gains())
    per_channel = channel_params(net, params, band, offsets, channels, predicted, around)
    ys, xs = np.divmod(np.arange((y1 - y0) * w), w)
    host = [tuple(t if isinstance(t, np.ndarray) else t.cpu().numpy() for t in p) for p in per_channel]
    learned = online.learned(net.mixture, host, band.numpy(), y1 - y0, w, xs + (net.cfg.reach_right + 1) * ys,
                             VERSION)
    order, steps, _ = band_symbol_order(y0, y1, w, net.cfg.reach_right, channels)

    def chunks() -> Iterator[Chunk]:
        for a, b in _chunks(steps, PMF_CHUNK):
            idx = order[a:b]
            x = band[torch.from_numpy(idx)].numpy()
            pmfs = channel_pmfs(net, per_channel, idx, learned)
            bits = _channel_bits(net, pmfs, [p[0][idx] for p in host], x)
            yield Chunk(a, b, idx, x, pmfs, bits)
    return offsets, chunks()


def _encode_band(net: IntegerPixelCNN, img: torch.Tensor, y0: int, y1: int, channels: int,
                 batch_rows: int, independent: bool, fit: adapt.Effort) -> tuple[bytes, float]:
    """One band's stream (the coder's words: its adaptation offsets, then its pixels) and the
    pixels' ideal bits."""
    positions = band_symbol_order(y0, y1, img.shape[1], net.cfg.reach_right, channels)[2]
    enc = StreamEncoder()
    ideal = 0.0
    offsets, chunks = _band_chunks(net, img, y0, y1, channels, batch_rows, independent, fit)
    offsets.write(enc, net.cfg.groups, net.cfg.components, net.cfg.channels)
    for chunk in chunks:
        a, b = chunk.a, chunk.b
        pos = positions[:, a:b] - channels * a
        symbols = np.empty(channels * (b - a), dtype=np.int32)
        table = np.empty((channels * (b - a), 256))  # float64, what the coder takes: no copy
        for c, pmf in enumerate(chunk.pmfs):
            symbols[pos[c]] = chunk.pixels[:, c]
            table[pos[c]] = pmf
        ideal += float(chunk.bits.sum())
        enc.encode(symbols, table)
    return enc.finish(), ideal


def encode_pixels(pixels: np.ndarray, model: weights.ModelFile, *, device: str = "cpu",
                  kernel: str = "auto", batch_rows: int = BATCH_ROWS, stream_rows: int = STREAM_ROWS,
                  stream_cols: int = STREAM_COLS, independent: bool = True, effort: int = adapt.DEFAULT_EFFORT,
                  progress: Progress | None = None) -> tuple[list[bytes], float]:
    """Model-code (H, W, 3) colour or (H, W) grey uint8 pixels: one stream per tile
    (``schedule.stream_tiles``), and the ideal code length in bits.

    ``independent`` tiles see nothing above or left of their own pixels (zeros, as outside the
    image), so a decoder runs them side by side in the same wavefront steps (about
    stream_cols + (r+1)·stream_rows steps instead of W + (r+1)·H); the lost context costs about
    0.3 % (benchmarks/bands.py). Otherwise each band (never cut into tiles) reads the rows above
    it and the decoder walks the whole image as one wavefront.

    Tiles are independent for the encoder (each reads its context rows from the image), so on
    the CPU they are coded in ``torch.get_num_threads()`` forked worker processes (while at most
    ``PIXELS_IN_FLIGHT`` pixels are in flight; ``parallel``); the bytes are the same.
    ``effort`` (``adapt.EFFORTS``) trades encoding time for size; decoding does not depend on it.
    """
    fit = adapt.effort_settings(effort)  # once, before any worker starts
    net = weights.load(model, kernel, device)
    channels = 3 if pixels.ndim == 3 else 1
    h, w = pixels.shape[:2]
    stream_cols = tile_columns(stream_cols, independent)
    img = as_rgb(pixels)
    tiles = stream_tiles(h, w, stream_rows, stream_cols)

    def job(i: int, report: Callable[[int], None]) -> tuple[bytes, float]:
        y0, y1, x0, x1 = tiles[i]
        coded = _encode_band(net, img[:, x0:x1], y0, y1, channels, batch_rows, independent, fit)
        report((y1 - y0) * (x1 - x0))
        return coded

    workers = min(_workers(net), PIXELS_IN_FLIGHT // (stream_rows * (stream_cols or w)))
    coded = parallel.run(job, len(tiles), workers, progress and (lambda done: progress(done, h * w)))
    return [stream for stream, _ in coded], sum(bits for _, bits in coded)


#: The automatic model choice measures ``SAMPLE_BANDS`` bands of ``SAMPLE_ROWS`` rows and at most
#: ``SAMPLE_COLS`` columns, spread evenly over the image (about 16,000 pixels).
SAMPLE_BANDS, SAMPLE_ROWS, SAMPLE_COLS = 4, 16, 256


def sample_bits(pixels: np.ndarray, model: weights.ModelFile, *, device: str = "cpu", kernel: str = "auto"
                ) -> float:
    """The ideal bits the integer model gives a fixed sample of the image's pixels: bands read
    as independent tiles, adapted as one tile (``adapt.choose`` at the default effort; its
    offsets' own cost left out), without learning while coding. What ``choose_model`` compares:
    unadapted bits would favour the model that needs less correction, not the one that codes
    the image in fewer bits."""
    net = weights.load(model, kernel, device)
    channels = 3 if pixels.ndim == 3 else 1
    h, w = pixels.shape[:2]
    img = as_rgb(pixels)
    rows, cols = min(SAMPLE_ROWS, h), min(SAMPLE_COLS, w)
    tile = img[:, (w - cols) // 2:(w - cols) // 2 + cols]
    trunks, guesses, bands, arounds = [], [], [], []
    for y0 in sorted({(h - rows) * i // max(1, SAMPLE_BANDS - 1) for i in range(SAMPLE_BANDS)}):
        trunk, predicted = _band_trunk(net, tile, y0, y0 + rows, BATCH_ROWS, True)
        trunks.append(trunk)
        guesses.append(predicted)
        bands.append(tile[y0:y0 + rows].reshape(-1, 3).to(torch.int32))
        arounds.append(band_around(net, trunk, bands[-1], predicted, cols))
    trunk, band = Trunk(*(torch.cat(v) for v in zip(*trunks))), torch.cat(bands)
    predicted = None if guesses[0] is None else torch.cat(guesses)
    around = None if arounds[0] is None else np.concatenate(arounds)
    offsets = adapt.choose(net, trunk, band, channels, predicted, adapt.effort_settings(adapt.DEFAULT_EFFORT), around)
    per_channel = channel_params(net, net.head_params(trunk, offsets.gains()), band, offsets, channels, predicted,
                                 around)
    idx = np.arange(band.shape[0])
    pmfs = channel_pmfs(net, per_channel, idx, np.zeros((channels, idx.size), dtype=np.int32))
    logits = [p[0] if isinstance(p[0], np.ndarray) else p[0].cpu().numpy() for p in per_channel]
    return float(_channel_bits(net, pmfs, logits, band.numpy()).sum())


def choose_model(pixels: np.ndarray, candidates: tuple[str, ...] = weights.DEFAULT_MODELS, *,
                 device: str = "cpu", kernel: str = "auto") -> weights.ModelFile:
    """The candidate model whose ``sample_bits`` of the image are fewest (the first on a tie):
    a specialist for soft chroma wins on photographs whose colour was stored at half resolution,
    the general model elsewhere. The candidates are measured side by side in worker processes
    (``parallel``) on the CPU. The file names the model it was written with, so the decoder
    needs no choice of its own."""
    models = [weights.by_name(name) for name in candidates]
    if len(models) == 1:
        return models[0]
    nets = [weights.load(m, kernel, device) for m in models]  # loaded once, before any worker forks
    costs = parallel.run(lambda i, _: sample_bits(pixels, models[i], device=device, kernel=kernel), len(models),
                         min(_workers(nets[0]), len(models)))
    return models[int(np.argmin(costs))]


def tile_columns(stream_cols: int, independent: bool) -> int:
    """The tile width a file records: dependent bands are never cut into tiles (0)."""
    return stream_cols if independent else 0


def _workers(net: IntegerPixelCNN) -> int:
    """Worker processes for independent tiles: one per torch thread on the CPU, none on a GPU."""
    return torch.get_num_threads() if net.device.type == "cpu" else 1


def pixel_costs(pixels: np.ndarray, model: weights.ModelFile | None = None, *, device: str = "cpu",
                kernel: str = "auto", batch_rows: int = BATCH_ROWS, stream_rows: int = STREAM_ROWS,
                stream_cols: int = STREAM_COLS, independent: bool = True, effort: int = adapt.DEFAULT_EFFORT,
                progress: Progress | None = None) -> np.ndarray:
    """The model's code length in bits of every coded subpixel, (H, W, channels) float64:
    −log2 of the exact integer probability the coder uses (tiles as ``encode_pixels`` codes them;
    ``model`` None: the one ``choose_model`` picks, as ``pxc compress`` would)."""
    fit = adapt.effort_settings(effort)
    net = weights.load(model or choose_model(pixels, device=device, kernel=kernel), kernel, device)
    channels = 3 if pixels.ndim == 3 else 1
    h, w = pixels.shape[:2]
    img = as_rgb(pixels)
    costs = np.zeros((h, w, channels))
    done = 0
    for y0, y1, x0, x1 in stream_tiles(h, w, stream_rows, tile_columns(stream_cols, independent)):
        tile = np.empty(((y1 - y0) * (x1 - x0), channels))
        for chunk in _band_chunks(net, img[:, x0:x1], y0, y1, channels, batch_rows, independent, fit)[1]:
            tile[chunk.idx] = chunk.bits
        costs[y0:y1, x0:x1] = tile.reshape(y1 - y0, x1 - x0, channels)
        done += (y1 - y0) * (x1 - x0)
        if progress:
            progress(done, h * w)
    return costs


def decode_pixels(streams: list[bytes], fingerprint: bytes, height: int, width: int, channels: int,
                  stream_rows: int, independent: bool, version: int = VERSION, stream_cols: int = 0, *,
                  device: str = "cpu", kernel: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """Inverse of ``encode_pixels``: (H, W, 3) colour or (H, W) grey uint8 pixels.

    Independent tiles are decoded side by side as lanes of one wavefront (at most
    ``LANE_CACHE_BYTES`` of caches at a time), on the CPU shared out between
    ``torch.get_num_threads()`` forked worker processes (``parallel``); dependent bands as one
    lane, the whole image, in this process. The streams are as format ``version`` writes them:
    from version 2 on, each starts with its tile's adaptation offsets (``adapt.Offsets``), as
    bytes before the coder's words up to version 8 and as its first coded symbols from version 9.
    """
    net = weights.load(weights.by_fingerprint(fingerprint), kernel, device)
    h, w = height, width
    lanes = list(zip(stream_tiles(h, w, stream_rows, stream_cols), range(len(streams)))) if independent \
        else [(Tile(0, h, 0, w), 0)]
    size, features = net.cfg.params_per_pixel, net.cfg.channels
    split, decoders = adapt.open_streams(streams, version, net.cfg.groups, net.cfg.components, features)
    offsets = np.array([o.as_row() for o in split], dtype=np.int32).reshape(-1, 9)
    heads = np.array([o.head_row(size) for o in split], dtype=np.int32).reshape(-1, size)
    gains = np.array([o.gain_row(features) for o in split], dtype=np.float32).reshape(-1, features)
    gains = gains if gains.any() else None
    workers = min(_workers(net), len(lanes))
    shares = [lanes[len(lanes) * i // workers:len(lanes) * (i + 1) // workers] for i in range(workers)]
    lane_w = max(tile.x1 - tile.x0 for tile, _ in lanes)
    group = max(1, LANE_CACHE_BYTES // workers // Wavefront.lane_bytes(net.cfg, lane_w))
    groups = [[share[i:i + group] for i in range(0, len(share), group)] for share in shares]
    r = net.cfg.reach_right
    steps = [[max(step_count(t.y1 - t.y0, t.x1 - t.x0, r) for t, _ in g) for g in share] for share in groups]
    total = sum(map(sum, steps))

    def job(i: int, report: Callable[[int], None]) -> list[np.ndarray]:
        """The pixels of the tiles of share ``i``, its groups of lanes decoded one after another."""
        y0 = min(t.y0 for t, _ in shares[i])
        out = np.zeros((max(t.y1 for t, _ in shares[i]) - y0, w, 3), dtype=np.uint8)
        share_steps = sum(steps[i])
        done, every = 0, max(1, share_steps // 100)
        for g, count in zip(groups[i], steps[i]):
            wave = net.wavefront(lane_w, len(g))
            mix = StepMixture(net.mixture, len(streams), len(g), lane_w, channels, stream_rows, r, version)
            lane_set = Lanes.of(g, y0)
            for t in range(count):
                _decode_step(net, wave, mix, t, lane_set, stream_rows, channels, decoders, offsets, heads, gains, out)
                done += 1
                if done % every == 0 or done == share_steps:
                    report(done)
        return [out[t.y0 - y0:t.y1 - y0, t.x0:t.x1] for t, _ in shares[i]]

    pixels = np.zeros((h, w, 3), dtype=np.uint8)
    parts = parallel.run(job, workers, workers, progress and (lambda d: progress(d, total)))
    for share, tiles in zip(shares, parts):
        for (t, _), part in zip(share, tiles):
            pixels[t.y0:t.y1, t.x0:t.x1] = part
    return pixels if channels == 3 else np.ascontiguousarray(pixels[..., 0])


class Lanes(NamedTuple):
    """The lanes of one wavefront as arrays (lane,): each tile's size, where it lies in the
    output (its top row counted from the output's first row, its left column) and its first
    stream (a dependent lane's later bands code into the streams after it)."""

    heights: np.ndarray
    widths: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    streams: np.ndarray

    @classmethod
    def of(cls, lanes: list[tuple[Tile, int]], out_y0: int) -> "Lanes":
        return cls(*(np.array(v, dtype=np.int64) for v in zip(*(
            (t.y1 - t.y0, t.x1 - t.x0, t.y0 - out_y0, t.x0, stream) for t, stream in lanes))))


def _decode_step(net: IntegerPixelCNN, wave: Wavefront, mix: StepMixture, t: int, lanes: Lanes,
                 stream_rows: int, channels: int, decoders: list[StreamDecoder], offsets: np.ndarray,
                 heads: np.ndarray, gains: np.ndarray | None, out: np.ndarray) -> None:
    """Decode the pixels of step ``t`` of every lane (a tile, and the stream of each of its
    bands of ``stream_rows`` rows) into ``out``, with each stream's adaptation ``offsets``
    (streams, 9: ``Offsets.as_row``), ``heads`` (streams, P: ``Offsets.head_row``) and feature
    ``gains`` (streams, C; None where every stream's are 0), and, from format version 5, the
    log-scale offsets ``mix`` has learned so far. Every lane's pixels of the step come in one
    batch, by lane and then by row, as a few array operations (per-lane Python would cost more
    than the arithmetic on a step's few pixels)."""
    r = net.cfg.reach_right
    a, b = step_rows(t, lanes.heights, lanes.widths, r)
    counts = np.maximum(b - a, 0)  # finished lanes, and tiles narrower than r + 1 columns, have empty steps
    n = int(counts.sum())
    if not n:
        return
    lane_np = np.repeat(np.arange(counts.size), counts)
    local_y = np.arange(n) + np.repeat(a - (np.cumsum(counts) - counts), counts)
    local_x = t - (r + 1) * local_y
    sid = lanes.streams[lane_np] + local_y // stream_rows
    cuts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    segments = [(int(sid[s]), s, e) for s, e in zip(cuts[:-1].tolist(), cuts[1:].tolist())]
    cells = wave.locate(lane_np, local_y, local_x)
    gain = None if gains is None else torch.from_numpy(gains[sid]).to(net.device)
    unadapted = None
    if net.mixture.neighbours is None:
        raw = wave.params(cells, gain)
    else:
        raw, unadapted = wave.params_and_unadapted(cells, gain)
        unadapted = unadapted.cpu().numpy()
    params = net.mixture.moved_params(raw.cpu().numpy(), heads[sid])
    mix.begin(lane_np, local_y, local_x, sid, params, offsets[sid], wave.predictions(cells) if net.cfg.blend else None,
              unadapted)
    known = np.zeros((n, 3), dtype=np.int32)
    for c in range(channels):
        pmf = mix.pmf(c, known)  # float64, what the coder takes: no copy per stream
        known[:, c] = np.concatenate([decoders[stream].decode(pmf[s:e]) for stream, s, e in segments])
        mix.see(c, known[:, c])
    if channels == 1:
        known[:, 1:] = known[:, :1]
    mix.end(known)
    rgb = known.astype(np.uint8)
    wave.put_pixels(cells, rgb)
    out[lanes.rows[lane_np] + local_y, lanes.cols[lane_np] + local_x] = rgb
