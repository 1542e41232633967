"""Shipped integer models: export from a trained float model, the ``.npz`` file, fingerprints.

A weights file holds everything the integer model computes with: int8 weights, int64 biases,
requantisation multipliers and shifts, clamp bounds, the head's parameter ranges, the lookup
tables of the integer PMF, (a model with ``posterior``) the posterior weights and the layers of
its coupling and neighbour nets where it has them, plus the architecture as JSON. Its fingerprint is the SHA-256 of the
file's bytes; every ``.pxc`` file names the fingerprint of the model that wrote it (DESIGN C7).
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .coupling import IntegerCoupling
from .errors import UnknownModelError
from .neighbours import IntegerNeighbours
from .intops import IntLayer, multiplier
from .mixture import RANGE, head_multipliers, make_tables
from .model import INPUT_SCALE, MaskedConv, PixelCNN, weight_scale
from .network import IntegerPixelCNN

FORMAT = "pxcodec-weights-1"
#: The general model, and what ``by_name`` finds unless told otherwise.
DEFAULT_MODEL = "pxc-f"
#: The models ``compress`` chooses between for each image unless told which to use
#: (``neural.choose_model``): the general one and four specialists for chroma at half resolution,
#: one fitted to the bilinear 4:2:0 pipeline, one to several (``data.CHROMA_PIPELINES``), one to
#: colour softer still (``data.soften_chroma``) and one to grain after it (``data.add_grain``).
DEFAULT_MODELS = (DEFAULT_MODEL, "pxc-w", "pxc-u", "pxc-x", "pxc-y")


def _weights_dir() -> Path:
    """``PXC_WEIGHTS`` if set; else ``weights/`` of a checkout; else the copy inside the wheel."""
    if "PXC_WEIGHTS" in os.environ:
        return Path(os.environ["PXC_WEIGHTS"])
    root = Path(__file__).resolve().parents[1]
    is_checkout = (root / "pyproject.toml").exists() and (root / "weights").is_dir()
    return root / "weights" if is_checkout else Path(__file__).resolve().parent / "_weights"


#: Folder of shipped models; ``PXC_WEIGHTS`` points elsewhere (e.g. for experiments).
WEIGHTS_DIR = _weights_dir()
UNBOUNDED = 2**40
LAYER_FIELDS = ("weight", "bias", "mult", "shift", "lo", "hi")
#: The arrays of each grid MLP (``coupling.integer_layers``): the coupling net's per channel G and
#: B (``coupling1.w1``, …) and the neighbour net's (``neighbours.w1``, …).
COUPLING_FIELDS = ("w1", "b1", "w2", "b2")


def _conv_integers(conv: MaskedConv, in_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (T·Cin, Cout) int8, biases in accumulator units, per-channel weight scale)."""
    w = (conv.weight * conv.mask).detach().float()
    s = weight_scale(w)
    q = torch.floor(w / s.view(-1, 1, 1, 1) + 0.5)
    taps = torch.stack([q[:, :, dy + conv.r, dx + conv.r] for dy, dx in conv.taps])  # (T, Cout, Cin)
    weight = taps.permute(0, 2, 1).reshape(-1, q.shape[0]).to(torch.int8).numpy()
    if conv.bias is None:
        bias = np.zeros(q.shape[0], dtype=np.int64)
    else:
        bias = torch.floor(conv.bias.detach() / (s * in_scale) + 0.5).to(torch.int64).numpy()
    return weight, bias, s.double().numpy()


def _layer(weight, bias, ratio, lo, hi) -> dict[str, np.ndarray]:
    ms = [multiplier(float(r)) for r in ratio]
    n = weight.shape[1]
    return {"weight": weight, "bias": bias.astype(np.int64),
            "mult": np.array([m for m, _ in ms], dtype=np.int64),
            "shift": np.array([s for _, s in ms], dtype=np.int64),
            "lo": np.broadcast_to(np.int64(lo), (n,)).copy(), "hi": np.broadcast_to(np.int64(hi), (n,)).copy()}


def export(model: PixelCNN) -> dict[str, np.ndarray]:
    """The arrays of a weights file for a trained float model."""
    cfg = model.cfg
    s_h = float(torch.exp(model.log_scale_h.detach()))
    s_u = torch.exp(model.log_scale_u.detach()).tolist()
    mult = head_multipliers(cfg.groups, cfg.components).numpy()
    arrays: dict[str, np.ndarray] = {}

    def put(name: str, layer: dict[str, np.ndarray], in_max: int) -> None:
        for key, value in layer.items():
            arrays[f"{name}.{key}"] = value
        arrays[f"{name}.in_max"] = np.array(in_max, dtype=np.int64)

    w1, b1, s1 = _conv_integers(model.first, INPUT_SCALE)
    ws, _, ss = _conv_integers(model.skip, INPUT_SCALE)
    top = cfg.stream_max
    first = _layer(w1, b1, s1 * INPUT_SCALE / s_h, 0, top)
    skip = _layer(ws, np.zeros(ws.shape[1]), ss * INPUT_SCALE * mult, -UNBOUNDED, UNBOUNDED)
    put("first", {k: np.concatenate([first[k], skip[k]], -1) for k in LAYER_FIELDS}, 128)
    for b in range(cfg.blocks):
        w, bias, s = _conv_integers(model.convs[b], s_h)
        put(f"conv{b}", _layer(w, bias, s * s_h / s_u[b], 0, 127), top)
        w, bias, s = _conv_integers(model.mixes[b], s_u[b])
        put(f"mix{b}", _layer(w, bias, s * s_u[b] / s_h, -UNBOUNDED, UNBOUNDED), 127)
    w, _, s = _conv_integers(model.head, s_h)
    put("head", _layer(w, np.zeros(w.shape[1]), s * s_h * mult, -UNBOUNDED, UNBOUNDED), top)
    arrays["head_bias"] = np.floor(model.head_bias.detach().double().numpy() * mult + 0.5).astype(np.int64)
    k3 = 3 * cfg.components
    arrays["param_lo"] = np.repeat([RANGE[g][0] for g in cfg.groups], k3).astype(np.int64)
    arrays["param_hi"] = np.repeat([RANGE[g][1] for g in cfg.groups], k3).astype(np.int64)
    if cfg.posterior:
        arrays["posterior"] = model.posterior_weights().detach().numpy().astype(np.int64)
    for c in range(1, 3) if cfg.coupling else ():
        for name, value in zip(COUPLING_FIELDS, model.coupling.integer_weights(c)):
            arrays[f"coupling{c}.{name}"] = value.detach().numpy().astype(np.int64)
    for name, value in zip(COUPLING_FIELDS, model.neighbours.integer_weights()) if cfg.neighbours else ():
        arrays[f"neighbours.{name}"] = value.detach().numpy().astype(np.int64)
    for name, table in make_tables().items():
        arrays[f"table.{name}"] = table
    arrays["config"] = np.array(cfg.to_json())
    arrays["format"] = np.array(FORMAT)
    return arrays


def save(arrays: dict[str, np.ndarray], path: Path) -> str:
    """Write a weights file atomically; returns its fingerprint (hex)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelFile:
    """A weights file on disk and its fingerprint."""

    name: str
    path: Path
    fingerprint: bytes


@functools.lru_cache(maxsize=None)
def _fingerprint(path: Path, mtime: float) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def available(folder: Path | None = None) -> list[ModelFile]:
    """Every weights file in the weights folder."""
    folder = folder or WEIGHTS_DIR
    return [ModelFile(p.stem, p, _fingerprint(p, p.stat().st_mtime)) for p in sorted(folder.glob("*.npz"))]


def by_name(name: str = DEFAULT_MODEL) -> ModelFile:
    for m in available():
        if m.name == name:
            return m
    raise UnknownModelError(f"no model named {name!r} in {WEIGHTS_DIR}")


def by_fingerprint(fingerprint: bytes) -> ModelFile:
    for m in available():
        if m.fingerprint == fingerprint:
            return m
    have = ", ".join(f"{m.name} ({m.fingerprint.hex()[:16]})" for m in available()) or "none"
    raise UnknownModelError(f"file needs model {fingerprint.hex()[:16]}, which this install does not "
                            f"have (installed: {have})")


def read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a weights file."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if str(arrays.get("format")) != FORMAT:
        raise UnknownModelError(f"{path} is not a {FORMAT} weights file")
    return arrays


def build(arrays: dict[str, np.ndarray], kernel: str = "auto", device: str = "cpu") -> IntegerPixelCNN:
    """An integer model from weights-file arrays, its kernels certified."""
    cfg = ModelConfig.from_json(str(arrays["config"]))
    names = ["first", "head"] + [f"{kind}{b}" for b in range(cfg.blocks) for kind in ("conv", "mix")]
    layers = {n: IntLayer(*(torch.from_numpy(np.ascontiguousarray(arrays[f"{n}.{k}"])) for k in LAYER_FIELDS),
                          int(arrays[f"{n}.in_max"])) for n in names}
    tables = {k.split(".", 1)[1]: arrays[k] for k in arrays if k.startswith("table.")}
    t = {k: torch.from_numpy(arrays[k]) for k in ("head_bias", "param_lo", "param_hi")}
    if cfg.posterior and "posterior" not in arrays:
        raise UnknownModelError("the weights file's model has posterior weights, but the file lacks them")
    coupling = None
    if cfg.coupling:
        names = [f"coupling{c}.{name}" for c in (1, 2) for name in COUPLING_FIELDS]
        if any(name not in arrays for name in names):
            raise UnknownModelError("the weights file's model has a coupling net, but the file lacks its layers")
        pairs = [tuple(arrays[f"coupling{c}.{name}"] for name in COUPLING_FIELDS) for c in (1, 2)]
        coupling = IntegerCoupling(pairs, cfg.components)
    neighbours = None
    if cfg.neighbours:
        names = [f"neighbours.{name}" for name in COUPLING_FIELDS]
        if any(name not in arrays for name in names):
            raise UnknownModelError("the weights file's model has a neighbour net, but the file lacks its layers")
        neighbours = IntegerNeighbours([arrays[name] for name in names], cfg.components, cfg.neighbour_reach)
    return IntegerPixelCNN(cfg, layers, t["head_bias"], t["param_lo"], t["param_hi"], tables,
                           kernel=kernel, device=device, posterior=arrays["posterior"] if cfg.posterior else None,
                           coupling=coupling, neighbours=neighbours)


@functools.lru_cache(maxsize=8)
def load(model: ModelFile, kernel: str = "auto", device: str = "cpu") -> IntegerPixelCNN:
    """The integer model of a weights file (cached per kernel and device)."""
    return build(read(model.path), kernel, device)
