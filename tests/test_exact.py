"""Contract C1: the encoder's and decoder's integers are identical on every code path."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from pxcodec import adapt, container, intops, network, neural, weights
from pxcodec.coder import StreamDecoder, StreamEncoder
from pxcodec.errors import CertificateError, CorruptError
from pxcodec.mixture import GRID, RANGE
from pxcodec.network import GAIN_UNIT, Trunk, gained_max

from .conftest import decode, encode, round_trips


@pytest.mark.parametrize("independent, cols, streams", [(True, 16, 6), (True, 0, 3), (False, 0, 3)])
def test_decoder_receives_the_encoders_pmfs(model, kodak_crop, monkeypatch, threads, independent, cols, streams):
    """Every PMF the decoder hands the coder equals, integer for integer and in the same order
    within each stream, the PMF the encoder used: tiles or bands side by side, or one wavefront."""
    threads(1)  # the coders are recorded in this process
    pmfs: dict[int, list[np.ndarray]] = {}
    stream_of: dict[int, bytes] = {}  # coder id → its stream's bytes, to pair the two sides
    alive = []  # keeps every coder alive, so that ids stay unique
    enc_encode, enc_finish = StreamEncoder.encode, StreamEncoder.finish
    dec_init, dec_decode = StreamDecoder.__init__, StreamDecoder.decode

    def record(self, pmf):
        alive.append(self)
        pmfs.setdefault(id(self), []).append(pmf.copy())

    def record_enc(self, symbols, pmf):
        record(self, pmf)
        return enc_encode(self, symbols, pmf)

    def record_finish(self):
        stream_of[id(self)] = enc_finish(self)
        return stream_of[id(self)]

    def record_init(self, data):
        alive.append(self)
        stream_of[id(self)] = bytes(data)
        dec_init(self, data)

    def record_dec(self, pmf):
        record(self, pmf)
        return dec_decode(self, pmf)

    monkeypatch.setattr(StreamEncoder, "encode", record_enc)
    monkeypatch.setattr(StreamEncoder, "finish", record_finish)
    monkeypatch.setattr(StreamDecoder, "__init__", record_init)
    monkeypatch.setattr(StreamDecoder, "decode", record_dec)
    pixels = kodak_crop[:40, :30]
    data = encode(pixels, model, stream_rows=16, stream_cols=cols, independent=independent).data
    assert np.array_equal(decode(data), pixels)
    sides = {}
    for coder, chunks in pmfs.items():
        sides.setdefault(stream_of[coder], []).append(np.concatenate(chunks))
    assert len(sides) == streams
    for enc, dec in sides.values():
        assert np.array_equal(enc, dec)  # both float64 tables, as the coder takes them
        assert np.array_equal(dec, np.floor(dec)) and dec.min() >= 1  # of integer masses, none zero


@pytest.mark.parametrize("compiled", [True, False])
def test_band_params_equal_wavefront_params(model, kodak_crop, compiled):
    """The encoder's batched trunk and the decoder's per-step trunk give the same parameters,
    also for two lanes (independent bands of different heights, each with its own feature
    gains) sharing the steps, whichever way a step runs: the compiled loops (the CPU's, with
    float32 kernels) or torch's operations (other devices' and kernels')."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop[:33, :24].copy())
    w = pixels.shape[1]
    lanes = [(0, 20), (20, 33)]
    gains = torch.stack([torch.arange(net.cfg.channels) % 9 - 4.0, -torch.arange(net.cfg.channels) % 31 * 2.0])
    batched = [net.band_params(pixels[a:b], 0, g).view(b - a, w, -1) for (a, b), g in zip(lanes, gains)]
    wave = net.wavefront(w, len(lanes))
    assert wave.compiled
    wave.compiled = compiled
    r = net.cfg.reach_right
    for t in range((w - 1) + (r + 1) * 19 + 1):
        parts = []
        for i, (a, b) in enumerate(lanes):
            ys = torch.arange(b - a)
            ys = ys[(t - (r + 1) * ys >= 0) & (t - (r + 1) * ys < w)]
            parts.append((torch.full_like(ys, i), ys))
        lane, ys = (torch.cat(v) for v in zip(*parts))
        xs = t - (r + 1) * ys
        if not len(ys):
            continue
        expected = torch.cat([batched[i][y, x][None] for i, y, x in zip(lane, ys, xs)])
        cells = wave.locate(lane.numpy(), ys.numpy(), xs.numpy())
        assert torch.equal(wave.params(cells, gains[lane]), expected)
        first = torch.tensor([a for a, _ in lanes])
        wave.put_pixels(cells, pixels[first[lane] + ys, xs].numpy())


def test_independent_bands_do_not_read_the_rows_above(model, kodak_crop):
    """Changing the first band changes no later band's stream when bands are independent, and
    does change the next band's stream when they read the rows above them."""
    pixels = kodak_crop[:48, :40].copy()
    changed = pixels.copy()
    changed[10:16] = 255 - changed[10:16]
    for independent in (True, False):
        a, _ = neural.encode_pixels(pixels, model, stream_rows=16, independent=independent)
        b, _ = neural.encode_pixels(changed, model, stream_rows=16, independent=independent)
        assert a[0] != b[0] and a[2] == b[2]
        assert (a[1] == b[1]) == independent


def test_independent_tiles_do_not_read_the_tiles_left_of_them(model, kodak_crop):
    """Changing a band's left tile changes neither its right tile's stream nor the next band's."""
    pixels = kodak_crop[:32, :40].copy()
    changed = pixels.copy()
    changed[4:12, :20] = 255 - changed[4:12, :20]
    a, _ = neural.encode_pixels(pixels, model, stream_rows=16, stream_cols=20)
    b, _ = neural.encode_pixels(changed, model, stream_rows=16, stream_cols=20)
    assert len(a) == 4 and a[0] != b[0] and a[1:] == b[1:]


@pytest.mark.parametrize("kernel", ["int8", "float32"])
def test_kernels_give_identical_bytes(model, kodak_crop, kernel):
    ref = encode(kodak_crop, model, kernel="int8").data
    assert encode(kodak_crop, model, kernel=kernel).data == ref
    assert np.array_equal(decode(ref, kernel=kernel), kodak_crop)


def test_kernels_give_identical_parameters(model, kodak_crop):
    pixels = torch.from_numpy(kodak_crop)
    a = weights.build(weights.read(model.path), kernel="int8").band_params(pixels, 0)
    b = weights.build(weights.read(model.path), kernel="float32").band_params(pixels, 0)
    assert torch.equal(a, b)


def test_batch_rows_and_threads_do_not_change_bytes(model, kodak_portrait, threads):
    threads(1)
    one = encode(kodak_portrait, model, batch_rows=5).data
    threads(2)
    assert encode(kodak_portrait, model, batch_rows=64).data == one


def test_bands_coded_in_worker_processes_give_the_serial_streams(model, kodak_portrait, threads):
    """With two threads the encoder codes bands in two forked workers; streams come back in
    order, and the decoder shares the bands out the same way."""
    threads(1)
    serial = neural.encode_pixels(kodak_portrait, model, stream_rows=16)
    threads(2)
    forked = neural.encode_pixels(kodak_portrait, model, stream_rows=16)
    seen: list[tuple[int, int]] = []
    pixels = neural.decode_pixels(forked[0], model.fingerprint, *kodak_portrait.shape[:2], 3, 16, True,
                                  progress=lambda done, total: seen.append((done, total)))
    assert len(serial[0]) == 4 and forked[0] == serial[0]
    assert forked[1] == pytest.approx(serial[1])
    assert np.array_equal(pixels, kodak_portrait)
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_corrupt_band_in_a_worker_raises_corrupt_error(model, kodak_portrait, threads, monkeypatch):
    """An error in a forked decoder worker reaches the caller with its own type (a stream that
    fails to decode only in the workers, after its prefix decoded in the parent)."""
    streams, _ = neural.encode_pixels(kodak_portrait, model, stream_rows=16)
    parent, decode_symbols = os.getpid(), StreamDecoder.decode

    def failing(self, pmf):
        if os.getpid() != parent:
            raise CorruptError("stream does not decode: a test's damage")
        return decode_symbols(self, pmf)
    monkeypatch.setattr(StreamDecoder, "decode", failing)
    threads(2)
    with pytest.raises(CorruptError, match="does not decode"):
        neural.decode_pixels(streams, model.fingerprint, *kodak_portrait.shape[:2], 3, 16, True)


def _doctored(model, name: str, value) -> dict:
    arrays = dict(weights.read(model.path))
    arrays[name] = value(arrays[name])
    return arrays


def test_certificate_refuses_float_kernel_that_could_round(model):
    """A layer whose partial sums could pass 2^24 is refused by the float32 kernel only."""
    def wide(w):  # a fan-in of 16 × 320 maximal weights: 5120 · 127 · 127 > 2^24
        return np.full((w.shape[0] * 16, w.shape[1]), 127, dtype=np.int8)
    arrays = _doctored(model, "conv0.weight", wide)
    with pytest.raises(CertificateError, match="float32"):
        weights.build(arrays, kernel="float32")
    net = weights.build(arrays, kernel="auto")
    assert net.gemms["conv0"].kernel == "int8"


def test_auto_takes_the_kernel_this_cpu_multiplies_faster(model, monkeypatch):
    """Where torch's int8 GEMM is slow (its reference path on a CPU without VNNI), ``auto``
    takes float32 wherever it is certified; where int8 is faster, int8."""
    int_mm = torch._int_mm

    def slow(x, w):
        time.sleep(0.05)
        return int_mm(x, w)
    monkeypatch.setattr(torch, "_int_mm", slow)
    intops.cpu_kernels.cache_clear()
    try:
        assert intops.cpu_kernels() == ("float32", "int8")
    finally:
        intops.cpu_kernels.cache_clear()
    arrays = dict(weights.read(model.path))
    for preferred in (("float32", "int8"), ("int8", "float32")):
        monkeypatch.setattr(network, "cpu_kernels", lambda: preferred)
        assert weights.build(arrays, kernel="auto").gemms["conv0"].kernel == preferred[0]


def test_certificate_refuses_non_int8_weights_and_overflowing_requantisation(model):
    with pytest.raises(CertificateError, match="int8"):
        weights.build(_doctored(model, "mix1.weight", lambda w: w.astype(np.int16) * 3))
    with pytest.raises(CertificateError, match="int64"):
        weights.build(_doctored(model, "head.mult", lambda m: m * 2**30))
    # Unclamped head outputs 4096× larger could pass 2^24, where float32 stops being exact.
    with pytest.raises(CertificateError, match="not exact in float32"):
        weights.build(_doctored(model, "head.shift", lambda s: s - 12))


def test_certificate_refuses_mixture_tables_that_could_overflow(model):
    """Mixture weights 16× larger would let the weighted 256-way sums pass 2^31."""
    with pytest.raises(CertificateError, match="mixture"):
        weights.build(_doctored(model, "table.exp", lambda e: e * 16))


def test_float64_and_int64_requantisation_agree(model, kodak_crop):
    """Where the certificate allows float64 requantisation it gives the int64 integers, in the
    CPU's compiled loops (``IntegerPixelCNN.requants``) as in torch's operations (other
    devices'): on a photo, and on layer inputs at the certificate's extremes."""
    fast, torch64, exact = (weights.build(weights.read(model.path)) for _ in range(3))
    assert all(g.float64 is not None for g in fast.gemms.values()) and fast.requants is not None
    torch64.requants = exact.requants = None
    for g in exact.gemms.values():
        g.float64 = None
    pixels = torch.from_numpy(kodak_crop)
    compiled = fast.band_params(pixels, 0)
    assert torch.equal(compiled, torch64.band_params(pixels, 0))
    assert torch.equal(compiled, exact.band_params(pixels, 0))
    gen = torch.Generator().manual_seed(5)
    for name, g in fast.gemms.items():
        k = g.layer.weight.shape[0]
        top = g.layer.in_max
        x = torch.randint(-top, top + 1, (512, k), generator=gen)
        x[:2] = top * torch.sign(g.layer.weight[:, :2].T.to(torch.int64))  # the bound, both signs
        x[2:4] = -x[:2]
        assert torch.equal(torch64.layer(name, x), exact.layer(name, x)), name


def test_gemm_chunking_does_not_change_parameters(model, kodak_crop, monkeypatch):
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop)
    whole = net.band_params(pixels, 3)
    monkeypatch.setattr(net, "GEMM_PIXELS", 37)  # row blocks of one row, and ragged head chunks
    assert torch.equal(net.band_params(pixels, 3), whole)


def _guess(net, pixels: torch.Tensor) -> torch.Tensor | None:
    """The classical predictions of a band's pixels for a model that blends towards them."""
    return net.band_predictions(pixels, 0) if net.cfg.blend else None


def test_numpy_and_torch_mixtures_give_identical_pmfs(model, kodak_crop):
    """The mixture in numpy (the decoder's, and the CPU encoder's PMFs) and in torch (the
    encoder's on other devices) gives identical parameters and PMFs, also with adaptation
    offsets that push means and scales to their clamps."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop)
    params = net.band_params(pixels, 0)
    known = pixels.reshape(-1, 3).to(torch.int32)
    guess = _guess(net, pixels)
    for c in range(3):
        for scale, mean in ((0, 0), (-32, 32), (32, -32)):
            parts = net.mixture.channel(params, c, known, scale, mean * 40, predicted=guess)
            in_numpy = net.mixture.channel(params.numpy(), c, known.numpy(), scale, mean * 40,
                                           predicted=None if guess is None else guess.numpy())
            assert all(np.array_equal(a.numpy(), b) for a, b in zip(parts, in_numpy))
            assert np.array_equal(net.mixture.pmf(*in_numpy), net.mixture.pmf(*parts).numpy())


def test_compiled_pmfs_equal_the_tensor_pmfs_over_the_whole_parameter_range(model):
    """The CPU's compiled PMF equals the tensor path's for parameters drawn over their whole
    clamp ranges (negative means, logit gaps past the largest weighted one, every log-scale),
    and every mass is at least 1."""
    mixture = weights.load(model).mixture
    rng = np.random.default_rng(7)
    shape = (5000, mixture.k)
    params = [rng.integers(*RANGE[group], shape, endpoint=True).astype(np.int32)
              for group in ("logit", "mean", "logscale")]
    compiled = mixture.pmf(*params)
    assert compiled.dtype == np.float64 and compiled.min() >= 1
    assert np.array_equal(compiled, mixture.pmf(*(torch.from_numpy(p) for p in params)).numpy())


def test_device_tensors_give_the_numpy_encoders_pmfs(model, kodak_crop):
    """The encoder's PMFs from parameters held as tensors (its path on a GPU, here on CPU
    tensors) equal those of its numpy path, with forward offsets and learned offsets that reach
    the clamps."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop[:16, :24].copy())
    params = net.band_params(pixels, 0)
    known = pixels.reshape(-1, 3).to(torch.int32)
    guess = _guess(net, pixels)
    offsets = adapt.Offsets(scale=[5, -32, 32], mean=[-32, 7, 32], coef=[32, -9, -32])
    in_numpy = neural.channel_params(net, params, known, offsets, 3, guess)
    as_tensors = [net.mixture.channel(params, c, known, offsets.scale[c], offsets.mean[c], offsets.coef, guess)
                  for c in range(3)]
    n = known.shape[0]
    learned = np.random.default_rng(0).choice([-16, -3, 0, 6, 16], (3, n)).astype(np.int32)
    idx = np.random.default_rng(1).permutation(n)[: n // 2]
    for a, b in zip(neural.channel_pmfs(net, as_tensors, idx, learned),
                    neural.channel_pmfs(net, in_numpy, idx, learned)):
        assert np.array_equal(a, b)


def test_code_lengths_equal_the_pmfs_bits(model, kodak_crop):
    """``IntegerMixture.code_lengths`` (K lookups per symbol, what the adaptation search uses)
    gives the code length of the full PMF, also where offsets push means and scales to their
    clamps and for the end symbols that carry the tails; ``totals`` (from the logits alone) is
    exactly what every PMF sums to."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop[:16, :32].copy())
    params = net.band_params(pixels, 0).to(torch.int64).numpy()
    x = pixels.reshape(-1, 3).to(torch.int64).numpy().copy()
    x[::7] = 0
    x[3::7] = 255
    guess = _guess(net, torch.from_numpy(x.astype(np.uint8).reshape(16, 32, 3)))
    guess = None if guess is None else guess.numpy()
    for c in range(3):
        logit, mean, scale = net.mixture.channel(params, c, x, predicted=guess)
        bits = net.mixture.code_lengths(logit, x[:, c])
        for offsets in ((-5, 0), (0, 0), (9, 3), (40, -600), (-40, 6000)):
            pmf = net.mixture.pmf(*net.mixture.channel(params, c, x, *offsets, predicted=guess)).astype(np.int64)
            assert np.array_equal(net.mixture.totals(logit), pmf.sum(1))
            full = -np.log2(np.take_along_axis(pmf, x[:, c:c + 1], 1)[:, 0] / pmf.sum(1))
            assert np.allclose(bits(*net.mixture.shift(mean, scale, *offsets)), full, rtol=0, atol=1e-9)


def _adapted(net, trunk: Trunk, pixels: torch.Tensor, offsets: adapt.Offsets) -> list[tuple]:
    """Each channel's (logits, means, log-scales) of a band without and with its offsets."""
    x = pixels.reshape(-1, 3).to(torch.int64)
    return [neural.channel_params(net, net.head_params(trunk, o.gains()), x, o, 3, _guess(net, pixels))
            for o in (adapt.Offsets(), offsets)]


def _entropies(net, per_channel: list[tuple]) -> list[float]:
    """Each channel's mean entropy in bits of its PMFs: how wide its distributions are (a mean of
    the components' log-scales is not: the fit may widen one component and narrow another)."""
    idx = np.arange(per_channel[0][0].shape[0])
    out = []
    for pmf in neural.channel_pmfs(net, per_channel, idx, np.zeros((len(per_channel), idx.size))):
        p = pmf / pmf.sum(1, keepdims=True)
        out.append(float(-(p * np.log2(p)).sum(1).mean()))
    return out


def _bits(net, per_channel: list[tuple], pixels: torch.Tensor) -> float:
    x = pixels.reshape(-1, 3).numpy()
    return sum(float(net.mixture.code_lengths(p[0], x[:, c])(*p[1:]).sum()) for c, p in enumerate(per_channel))


def test_adaptation_follows_the_image(model, kodak_crop):
    """A photo with added noise gets wider distributions in every channel, and the stream carries
    its offsets for the decoder; a model whose means are one level too high, or whose G←R
    coefficients are too large, is adapted back to within 2 % of the code length the model
    without that error gets."""
    rng = np.random.default_rng(0)
    noisy = np.clip(kodak_crop[:32, :48] + rng.integers(-24, 25, (32, 48, 3)), 0, 255).astype(np.uint8)
    streams, _ = neural.encode_pixels(noisy, model)
    net = weights.load(model)
    (offsets,), _ = adapt.open_streams(streams[:1], container.VERSION, net.cfg.groups, net.cfg.components,
                                       net.cfg.channels)
    raw, adapted = _adapted(net, net.band_trunk(torch.from_numpy(noisy), 0), torch.from_numpy(noisy), offsets)
    assert all(e > f for e, f in zip(_entropies(net, adapted), _entropies(net, raw)))
    assert round_trips(noisy, model)
    pixels = torch.from_numpy(kodak_crop[:32, :48].copy())
    true = net.band_trunk(pixels, 0)
    x = pixels.reshape(-1, 3).to(torch.int64)
    best = _bits(net, _adapted(net, true, pixels, adapt.choose(net, true, x, 3, _guess(net, pixels)))[1], pixels)
    k = net.cfg.components
    for group, error in ((1, GRID["mean"]), (3, GRID["coef"] // 4)):  # means a level high; G←R a quarter large
        skip = true.skip.clone()  # the head's skip term adds to every parameter before its clamp
        skip[:, 3 * k * group:3 * k * group + k] += error
        trunk = Trunk(true.features, skip)
        offsets = adapt.choose(net, trunk, x, 3, _guess(net, pixels))
        before, after = (_bits(net, p, pixels) for p in _adapted(net, trunk, pixels, offsets))
        assert after < 1.02 * best < before, (group, before, after, best)


@pytest.mark.parametrize("version, stream", [
    (4, b""), (4, bytes(8)), (3, bytes(4)), (2, bytes(7)),
    (4, bytes([0] * 11 + [1] + [0] * 4)), (3, bytes([0] * 7 + [1] + [0] * 8)),  # padding not zero
    (4, bytes([adapt.MAX_SCALE + 1] + [0] * 15)), (3, bytes([adapt.MAX_SCALE + 1] + [0] * 15)),
    (4, bytes([0, 0, 0, 0, 0, 256 - adapt.MAX_MEAN - 1] + [0] * 10)),
    (4, bytes([0] * 8 + [adapt.MAX_COEF + 1] + [0] * 7)),
    (6, bytes(12 + 59)),  # one head offset short
    (6, bytes(12 + 59) + bytes([128])),  # a head offset of −128: beyond MAX_HEAD
    (8, bytes(12 + 60 + 15)),  # one gain short
    (8, bytes(12 + 60 + 15) + bytes([GAIN_UNIT])),  # a gain of 2: beyond the largest
    (8, bytes(12 + 60 + 15) + bytes([256 - GAIN_UNIT - 1]))])  # a gain below 0
def test_bad_adaptation_offsets_are_corrupt(version, stream):
    with pytest.raises(CorruptError, match="offsets"):
        adapt.Offsets.unpack(stream, version, 60, 16)


GROUPS = ("logit", "mean", "logscale", "coef")  # 60 head parameters with 5 components


def _coded(offsets: adapt.Offsets, features: int, then: np.ndarray) -> bytes:
    """A version-9 stream: the offsets, then symbols ``then`` coded with a flat PMF."""
    enc = StreamEncoder()
    offsets.write(enc, GROUPS, 5, features)
    enc.encode(then, np.ones((then.size, 256)))
    return enc.finish()


def test_offsets_round_trip_through_the_coded_prefix():
    """Every offset a prefix can carry, extremes included, comes back, and the stream's decoder
    then stands at the first pixel symbol; likely offsets cost well under a byte each."""
    head = (-adapt.MAX_HEAD, adapt.MAX_HEAD) + tuple(range(-116, 116, 4))
    gain = (-GAIN_UNIT, GAIN_UNIT - 1, 0, 5, -7, -64, 12, 1) * 2
    assert len(head) == 60
    offsets = adapt.Offsets([-32, 5, 0], [7, -32, 32], [32, -1, -32], head, gain)
    then = np.array([0, 255, 17, 3])
    (back,), (dec,) = adapt.open_streams([_coded(offsets, 16, then)], 9, GROUPS, 5, 16)
    assert back == offsets and np.array_equal(dec.decode(np.ones((4, 256))), then)
    small = adapt.Offsets([0, -1, 0], [1, 0, 0], [0, 0, 1], (0, 3, -2) * 20, (-11, -20, 0, 5) * 4)
    assert len(_coded(small, 16, then[:0])) < 0.6 * (9 + 60 + 16)


def test_impossible_coded_offsets_are_corrupt():
    """A version-9 prefix that decodes to an offset the encoder never writes (a scale offset
    beyond MAX_SCALE: its prior's mass is 1, so it can be coded) is corrupt."""
    values = np.zeros(9 + 60 + 16, dtype=np.int64)
    values[0] = adapt.MAX_SCALE + 1
    enc = StreamEncoder()
    enc.encode(values + 128, adapt.prefix_masses(GROUPS, 5, 16))
    with pytest.raises(CorruptError, match="offsets"):
        adapt.open_streams([enc.finish()], 9, GROUPS, 5, 16)


def test_prefix_masses_follow_the_groups_and_stay_integer():
    """Each value's prior is its kind's: the head's by parameter group, a mass of 1 outside what
    the kind allows, the most at its centre; the same integers on every call."""
    masses = adapt.prefix_masses(GROUPS + ("blend",), 5, 16)
    assert masses.shape == (9 + 75 + 16, 256) and masses.dtype == np.int64
    assert np.array_equal(masses, adapt.prefix_masses(GROUPS + ("blend",), 5, 16))
    assert (masses[0, :128 - adapt.MAX_SCALE] == 1).all() and masses[0, 128 - adapt.MAX_SCALE] >= adapt.Prior.FLOOR
    assert masses[0].argmax() == 128 and masses[9 + 30].argmax() == 129  # a log-scale offset: +1
    assert np.array_equal(masses[9 + 60], adapt.HEAD_PRIORS["blend"].masses())
    assert (masses[-1, :128 - GAIN_UNIT] == 1).all() and masses[-1, 128 - GAIN_UNIT] > masses[-1, 129 - GAIN_UNIT]


@pytest.mark.parametrize("version, head", [(5, 0), (7, 60)])
def test_older_prefixes_have_no_head_offsets_or_gains(version, head):
    """Before version 6 a prefix is 12 bytes whatever the model, its head offsets zeros; before
    version 8 it carries no gains (1, the model as shipped)."""
    stream = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0]) + bytes(range(head)) + b"rest"
    offsets, rest = adapt.Offsets.unpack(stream, version, 60, 16)
    assert (offsets.as_row(), offsets.head, offsets.gain, rest) == (list(range(1, 10)), tuple(range(head)), (),
                                                                    b"rest")
    assert np.array_equal(offsets.head_row(60), np.arange(60) if head else np.zeros(60))
    assert offsets.gains() is None


def test_head_offsets_and_gains_shorten_a_tile(model, kodak_crop):
    """Head offsets and feature gains fitted together lower the exact code length of the pixels
    they were fitted on by more than either part of the fit alone, and stay within what a prefix
    can carry."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop[:32, :48].copy())
    trunk = net.band_trunk(pixels, 0)
    x = pixels.reshape(-1, 3).to(torch.int32)
    guess = _guess(net, pixels)
    head, gain = adapt.fit_head(net, trunk, x, 3, guess, adapt.EFFORTS[adapt.DEFAULT_EFFORT])
    assert any(head) and max(map(abs, head)) <= adapt.MAX_HEAD
    assert any(gain) and all(-GAIN_UNIT <= k < GAIN_UNIT for k in gain) and len(gain) == net.cfg.channels

    def bits(offsets: adapt.Offsets) -> float:
        params = net.head_params(trunk, offsets.gains())
        return _bits(net, neural.channel_params(net, params, x, offsets, 3, guess), pixels)
    without, heads, gains, both = (bits(adapt.Offsets(head=h, gain=g)) for h, g in
                                   (((), ()), (head, ()), ((), gain), (head, gain)))
    assert both < min(heads, gains) and both < 0.99 * without


def test_gains_scale_the_features_the_head_reads(model, kodak_crop):
    """The head's parameters with gains are exactly those of the features scaled, rounded to the
    nearest integer (halves up), in the encoder's band pass and in the decoder's steps alike;
    gains of 0 change nothing."""
    net = weights.load(model)
    pixels = torch.from_numpy(kodak_crop[:8, :16].copy())
    trunk = net.band_trunk(pixels, 0)
    c = net.cfg.channels
    gains = (torch.arange(c) * (2 * GAIN_UNIT) // c - GAIN_UNIT).float()  # the lowest gain, 0, to almost 2
    h = trunk.features.to(torch.int64)
    scaled = (h * (gains.to(torch.int64) + GAIN_UNIT) + GAIN_UNIT // 2) // GAIN_UNIT
    assert int(scaled.max()) <= gained_max(net.cfg.stream_max)
    expected = (net.layer("head", scaled.to(torch.float32)).add_(trunk.skip).add_(net.head_bias)
                .clamp_(net.param_lo, net.param_hi).to(torch.int32))
    assert torch.equal(net.band_params(pixels, 0, gains), expected)
    assert torch.equal(net.head_params(trunk, torch.zeros(c)), net.band_params(pixels, 0))
    assert not torch.equal(expected, net.band_params(pixels, 0))


def test_version_3_prefixes_have_no_colour_coefficients():
    """A version-3 stream's 8-byte prefix reads as scale and mean offsets, coefficients zero;
    a version-1 stream has no prefix at all."""
    stream = bytes([1, 2, 3, 4, 5, 6, 0, 0]) + b"rest"
    assert adapt.Offsets.unpack(stream, 3, 60, 16) == (adapt.Offsets([1, 2, 3], [4, 5, 6], [0, 0, 0]), b"rest")
    assert adapt.Offsets.unpack(stream, 1, 60, 16) == (adapt.Offsets(), stream)


@pytest.mark.parametrize("n", [49152, 16384, 3000])
def test_the_fits_batches_cover_the_tile(n):
    """The default effort's fit learns from every pixel of a tile, a different evenly spaced
    subset of about ``batch`` pixels each step; a tile smaller than a batch is fitted whole."""
    fit = adapt.EFFORTS[adapt.DEFAULT_EFFORT]
    order, runs = adapt._batches(n, fit.batch, fit.steps)
    batches = [order.numpy()[at] for at in runs]
    assert len(batches) == fit.steps
    assert np.array_equal(np.unique(np.concatenate(batches)), np.arange(n))
    assert all(fit.batch <= b.size < 2 * fit.batch or b.size == n for b in batches)
    assert all(np.unique(np.diff(b)).size <= 1 for b in batches)  # evenly spaced
    assert len({b[0] for b in batches[:5]}) == min(5, max(1, n // fit.batch))


def test_the_fits_adam_is_torchs():
    """The head-offset fit's written-out Adam takes exactly torch.optim.Adam's steps (same
    defaults, same arithmetic), so offsets do not change with how the update is spelled."""
    target = torch.linspace(-40, 40, 60)
    ours, theirs = torch.zeros(60, requires_grad=True), torch.zeros(60, requires_grad=True)
    fit = adapt.EFFORTS[adapt.DEFAULT_EFFORT]
    step, optimiser = adapt._Adam(ours, fit.rate), torch.optim.Adam([theirs], lr=fit.rate)
    for _ in range(fit.steps):
        step(*torch.autograd.grad(((ours - target) ** 2).sum(), ours))
        optimiser.zero_grad()
        ((theirs - target) ** 2).sum().backward()
        optimiser.step()
    assert torch.equal(ours, theirs) and ours.abs().max() > 10


def test_numpy_and_torch_pixel_codes_agree():
    """The decoder's numpy pixel codes are the encoder's and training's torch ones, every value."""
    from pxcodec.network import pixel_codes
    rgb = np.arange(256 * 3, dtype=np.int64).reshape(256, 3) % 256
    rgb = rgb.astype(np.uint8)
    assert np.array_equal(pixel_codes(rgb), pixel_codes(torch.from_numpy(rgb)).numpy())
