"""``pxc bench``: pxcodec against PNG, WebP (and JPEG XL / JPEG 2000) on the same images.

Each pxc file is decoded and compared with the original before its size counts. Results are
rows of plain numbers; ``write`` turns them into a CSV, a JSON and a bar chart (``chart``).
"""
from __future__ import annotations

import csv
import functools
import json
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import codec, images, intops, references, weights
from .adapt import DEFAULT_EFFORT
from .errors import InputError


@dataclass
class Row:
    """One image: its size, the model that coded it, pxc's real and ideal bits and times, and
    every reference codec's."""

    image: str
    model: str
    width: int
    height: int
    pxc_bytes: int
    ideal_bits: float
    encode_s: float
    decode_s: float
    reference_bytes: dict[str, int]
    reference_times: dict[str, tuple[float, float]] = field(default_factory=dict)  # (encode s, decode s)

    @property
    def subpixels(self) -> int:
        return 3 * self.width * self.height

    def bpsp(self, codec_name: str = "pxc") -> float:
        n = self.pxc_bytes if codec_name == "pxc" else self.reference_bytes[codec_name]
        return 8 * n / self.subpixels

    def as_dict(self) -> dict:
        out = {"image": self.image, "model": self.model, "width": self.width, "height": self.height,
               "pxc_bytes": self.pxc_bytes, "pxc_bpsp": self.bpsp(), "ideal_bpsp": self.ideal_bits / self.subpixels,
               "encode_s": self.encode_s, "decode_s": self.decode_s}
        for name, n in self.reference_bytes.items():
            out[f"{name} bytes"] = n
            out[f"{name} bpsp"] = self.bpsp(name)
            out[f"pxc/{name}"] = self.pxc_bytes / n
            if name in self.reference_times:
                out[f"{name} encode_s"], out[f"{name} decode_s"] = self.reference_times[name]
        return out


def rgb_images(paths: Iterable[Path]) -> list[Path]:
    """The image files among paths (folders: their PNGs), sorted."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.glob("*.png")) if p.is_dir() else [p])
    return files


def measure(path: Path, model: weights.ModelFile | None, repeat: int = 1, optional: bool = True,
            device: str = "cpu", effort: int = DEFAULT_EFFORT) -> Row:
    """Benchmark one 8-bit RGB image: median encode time over ``repeat`` runs (at encoder
    ``effort``, with ``model`` or the one the encoder chooses), one verified decode."""
    picture = images.read_file(path)
    if picture.mode != "RGB":
        raise InputError(f"{path}: bench compares 8-bit RGB images; this one is {picture.mode}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        enc = codec.encode(picture, model, device=device, effort=effort)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    back = codec.decode(enc.data, device=device)
    decode_s = time.perf_counter() - t0
    if not np.array_equal(back.pixels, picture.pixels):
        raise RuntimeError(f"{path}: pxc round trip is not exact")
    sizes, ref_times = {}, {}
    for name, ref in references.codecs(optional).items():
        t0 = time.perf_counter()
        data = ref.encode(picture.pixels)
        t1 = time.perf_counter()
        if not np.array_equal(ref.decode(data), picture.pixels):
            raise RuntimeError(f"{path}: {name} round trip is not exact")
        sizes[name], ref_times[name] = len(data), (t1 - t0, time.perf_counter() - t1)
    return Row(path.stem, enc.model.name, picture.width, picture.height, len(enc.data), enc.ideal_bits,
               statistics.median(times), decode_s, sizes, ref_times)


def summary(rows: list[Row]) -> dict:
    """Totals over all rows: bits per subpixel of every codec (size-weighted) and median times."""
    sub = sum(r.subpixels for r in rows)
    names = ["pxc"] + list(rows[0].reference_bytes)
    out = {"images": len(rows),
           "pxc_bpsp": 8 * sum(r.pxc_bytes for r in rows) / sub,
           "ideal_bpsp": sum(r.ideal_bits for r in rows) / sub,
           "median_encode_s": statistics.median(r.encode_s for r in rows),
           "median_decode_s": statistics.median(r.decode_s for r in rows),
           "models": dict(sorted(Counter(r.model for r in rows).items()))}
    for name in names[1:]:
        out[f"{name} bpsp"] = 8 * sum(r.reference_bytes[name] for r in rows) / sub
        out[f"pxc/{name}"] = out["pxc_bpsp"] / out[f"{name} bpsp"]
        if all(name in r.reference_times for r in rows):
            out[f"{name} median_encode_s"] = statistics.median(r.reference_times[name][0] for r in rows)
            out[f"{name} median_decode_s"] = statistics.median(r.reference_times[name][1] for r in rows)
    return out


def table(rows: list[Row]) -> str:
    """A terminal table: bpsp per image per codec, pxc's ratio to PNG, times, and the total."""
    names = list(rows[0].reference_bytes)
    head = f"{'image':<12}{'model':>8}{'pxc':>7}{'ideal':>7}" + "".join(f"{n:>12}" for n in names) + \
        f"{'pxc/PNG':>9}{'enc s':>7}{'dec s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.image:<12}{r.model:>8}{r.bpsp():>7.3f}{r.ideal_bits / r.subpixels:>7.3f}"
                     + "".join(f"{r.bpsp(n):>12.3f}" for n in names)
                     + f"{r.pxc_bytes / r.reference_bytes['PNG']:>9.3f}{r.encode_s:>7.2f}{r.decode_s:>7.2f}")
    s = summary(rows)
    lines.append("-" * len(head))
    lines.append(f"{'all':<12}{'':>8}{s['pxc_bpsp']:>7.3f}{s['ideal_bpsp']:>7.3f}"
                 + "".join(f"{s[f'{n} bpsp']:>12.3f}" for n in names)
                 + f"{s['pxc/PNG']:>9.3f}{s['median_encode_s']:>7.2f}{s['median_decode_s']:>7.2f}")
    times = [f"pxc {s['median_encode_s']:.2f}/{s['median_decode_s']:.2f}"]
    times += [f"{n} {s[f'{n} median_encode_s']:.2f}/{s[f'{n} median_decode_s']:.2f}" for n in names
              if f"{n} median_encode_s" in s]
    lines.append("median encode/decode seconds per image: " + ", ".join(times))
    m = machine()
    lines.append(f"on {m['cpu']} ({m['simd']}, {m['cores']} cores; {m['kernels'][0]} GEMMs)")
    return "\n".join(lines)


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def chart(rows: list[Row]) -> Image.Image:
    """A grouped bar chart of bits per subpixel per image and codec, drawn with Pillow."""
    names = ["pxc"] + list(rows[0].reference_bytes)
    top = max(max(r.bpsp(n) for n in names) for r in rows) * 1.1
    group = max(12 * len(names) + 14, 6 * max(len(r.image) for r in rows) + 10)
    w, h, left, bottom = max(560, 80 + group * len(rows)), 360, 50, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    plot_h = h - bottom - 40
    for tick in range(0, int(top) + 1):
        y = h - bottom - tick / top * plot_h
        d.line([(left, y), (w - 10, y)], fill=(225, 225, 225))
        d.text((left - 30, y - 6), f"{tick}", fill="black")
    for i, r in enumerate(rows):
        x0 = left + 10 + i * group
        for j, n in enumerate(names):
            y = h - bottom - r.bpsp(n) / top * plot_h
            d.rectangle([x0 + 12 * j, y, x0 + 12 * j + 10, h - bottom], fill=PALETTE[j % len(PALETTE)])
        d.text((x0, h - bottom + 6 + 12 * (i % 2)), r.image, fill="black")
    x = left
    for j, n in enumerate(names):
        d.rectangle([x, 12, x + 10, 22], fill=PALETTE[j % len(PALETTE)])
        d.text((x + 14, 10), n, fill="black")
        x += 14 + int(d.textlength(n)) + 20
    d.text((6, 28), "bits/subpixel", fill="black")
    return img


def write_tables(stem: Path, rows: list[dict], document: object, fields: list[str] | None = None) -> None:
    """A measurement's ``rows`` as ``stem.csv`` (columns ``fields``, by default the first row's
    keys) and ``document`` (the rows with whatever summarises them) as ``stem.json``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with stem.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")


@functools.cache
def machine() -> dict:
    """What the times were measured on: the CPU, its SIMD level as torch sees it, the cores and
    the GEMM kernels fastest first (``intops.cpu_kernels``): the same model decodes several times
    as fast where int8 GEMMs have VNNI as where they do not. Read once per process (``table``
    and ``write`` both report it); treat it as read-only."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "simd": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "kernels": list(intops.cpu_kernels())}


def write(rows: list[Row], out: Path, name: str = "bench", extra: dict | None = None) -> None:
    """``out/name.csv``, ``out/name.json`` (rows, summary and ``machine``) and ``out/name.png``
    (chart)."""
    dicts = [r.as_dict() for r in rows]
    write_tables(out / name, dicts, {"summary": {**summary(rows), **(extra or {})}, "machine": machine(),
                                     "images": dicts})
    chart(rows).save(out / f"{name}.png")


def run(paths: list[Path], model: weights.ModelFile | None, repeat: int = 1, optional: bool = True,
        device: str = "cpu", on_row: Callable[[Row], None] | None = None,
        effort: int = DEFAULT_EFFORT) -> list[Row]:
    """Measure every image (see ``measure``), calling ``on_row`` after each."""
    rows = []
    for p in paths:
        rows.append(measure(p, model, repeat, optional, device, effort))
        if on_row:
            on_row(rows[-1])
    return rows
