"""What independent bands and tiles cost: the model's ideal bits with and without the context
they cut off.

    python benchmarks/bands.py [--rows 64 128 256] [--cols 0 384] [--limit N] [--threads 1]

Format version 2 codes each band of ``stream_rows`` rows without the rows above it, and version 3
also cuts each band into tiles of ``stream_cols`` columns coded without the tile to their left,
so the decoder runs all tiles side by side (stream_cols + 3·rows wavefront steps instead of
W + 3·H). This measures the price of that: the exact integer model's code length (−Σ log2 p,
which real files match within 0.03 %) on the validation photos (036–040) and on Kodak, with
dependent bands (every pixel sees its full context) and with independent tiles of each shape
(``--cols 0``: whole-width bands). Writes ``benchmarks/results/bands.csv`` and ``.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import neural, weights  # noqa: E402
from pxcodec.data import SHARED_DATA, VALIDATION_NAMES  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402


def ideal_bpsp(pixels: np.ndarray, model: weights.ModelFile, rows: int | None, cols: int = 0) -> float:
    """Ideal bits per subpixel: one wavefront over the image (``rows`` None) or independent tiles."""
    costs = neural.pixel_costs(pixels, model, stream_rows=rows or pixels.shape[0], stream_cols=cols,
                               independent=rows is not None)
    return float(costs.mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--cols", type=int, nargs="+", default=[0], help="tile columns (0: whole-width bands)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N Kodak images")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.by_name()
    sets = {"validation": [SHARED_DATA / "train" / f"{n}.png" for n in VALIDATION_NAMES],
            "kodak": sorted((SHARED_DATA / "kodak").glob("*.png"))[:args.limit]}
    shapes = [f"{r}x{c or 'W'}" for r in args.rows for c in args.cols]
    rows = []
    for name, paths in sets.items():
        for path in paths:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB")).copy()
            row = {"set": name, "image": path.stem, "height": pixels.shape[0],
                   "dependent_bpsp": ideal_bpsp(pixels, model, None)}
            for r in args.rows:
                for c in args.cols:
                    shape = f"{r}x{c or 'W'}"
                    row[f"independent_{shape}_bpsp"] = ideal_bpsp(pixels, model, r, c)
                    row[f"cost_{shape}_percent"] = 100 * (row[f"independent_{shape}_bpsp"] / row["dependent_bpsp"] - 1)
            rows.append(row)
            print(f"{name:<11}{path.stem:<9}{row['dependent_bpsp']:8.4f}"
                  + "".join(f"{row[f'cost_{shape}_percent']:+9.3f}%" for shape in shapes), flush=True)
    summary = {}
    for name in sets:
        sel = [r for r in rows if r["set"] == name]
        dep = statistics.fmean(r["dependent_bpsp"] for r in sel)
        summary[name] = {"images": len(sel), "dependent_bpsp": dep}
        for shape in shapes:
            ind = statistics.fmean(x[f"independent_{shape}_bpsp"] for x in sel)
            summary[name][f"independent_{shape}_bpsp"] = ind
            summary[name][f"cost_{shape}_percent"] = 100 * (ind / dep - 1)
    print(f"\n{'set':<12}{'dependent':>10}" + "".join(f"{shape:>18}" for shape in shapes))
    for name, s in summary.items():
        print(f"{name:<12}{s['dependent_bpsp']:>10.4f}" + "".join(
            f"{s[f'independent_{shape}_bpsp']:>10.4f} {s[f'cost_{shape}_percent']:+6.3f}%" for shape in shapes))
    out = ROOT / "benchmarks" / "results" / "bands"
    write_tables(out, rows, {"summary": summary, "model": model.name, "images": rows})
    print(f"wrote {out}.csv and .json")


if __name__ == "__main__":
    main()
