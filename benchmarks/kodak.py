"""Kodak benchmark: real .pxc files against PNG, WebP (and JPEG XL / JPEG 2000 with
imagecodecs), measured in the same run, plus encode/decode times and the cost of quantisation.

    python benchmarks/kodak.py [--images DIR] [--model NAME] [--run weights/runs/NAME] [--repeat 3]

Every .pxc file is decoded and compared with the original before its size counts. Writes
``benchmarks/results/kodak-<model>.csv`` and ``.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import codec, references, weights  # noqa: E402
from pxcodec.data import SHARED_DATA, load_rgb  # noqa: E402


def float_bits(run: Path, pixels: np.ndarray) -> float:
    """Bits of the float (QAT) model of a training run on a whole image."""
    from pxcodec.train import load_checkpoint
    model, _ = load_checkpoint(run)
    with torch.no_grad():
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        return float(model.nll(x).double().sum()) / math.log(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=SHARED_DATA / "kodak")
    ap.add_argument("--model", default=weights.DEFAULT_MODEL)
    ap.add_argument("--run", type=Path, default=None, help="training run, to report the float model's bits")
    ap.add_argument("--repeat", type=int, default=3, help="encodes per image (median time)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--card", action="store_true", help="record the result in the model's card")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.by_name(args.model)
    refs = references.codecs()
    paths = sorted(args.images.glob("*.png"))[:args.limit]
    rows = []
    for path in paths:
        pixels = load_rgb(path).permute(1, 2, 0).contiguous().numpy()
        h, w, _ = pixels.shape
        enc_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            enc = codec.encode_rgb(pixels, model)
            enc_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = codec.decode_rgb(enc.data)
        dec_time = time.perf_counter() - t0
        if not np.array_equal(back, pixels):
            raise SystemExit(f"{path.name}: round trip is not exact")
        row = {"image": path.stem, "width": w, "height": h, "pxc_bytes": len(enc.data),
               "pxc_bpsp": codec.bits_per_subpixel(len(enc.data), w, h),
               "ideal_bpsp": enc.ideal_bits / pixels.size,
               "encode_s": statistics.median(enc_times), "decode_s": dec_time}
        if args.run:
            row["float_bpsp"] = float_bits(args.run, pixels) / pixels.size
        for name, size in refs.items():
            row[f"{name} bpsp"] = codec.bits_per_subpixel(size(pixels), w, h)
        rows.append(row)
        print(f"{path.stem}: pxc {row['pxc_bpsp']:.3f}  PNG {row['PNG bpsp']:.3f}  WebP {row['WebP bpsp']:.3f}"
              f"  enc {row['encode_s']:.2f}s dec {dec_time:.2f}s", flush=True)
    total_sub = sum(r["width"] * r["height"] * 3 for r in rows)

    def overall(key: str) -> float:  # bits per subpixel over the whole set (size-weighted)
        return sum(r[key] * r["width"] * r["height"] * 3 for r in rows) / total_sub

    keys = ["pxc_bpsp", "ideal_bpsp"] + (["float_bpsp"] if args.run else []) + [f"{n} bpsp" for n in refs]
    cfg = weights.load(model).cfg
    summary = {"model": model.name, "fingerprint": model.fingerprint.hex(), "images": len(rows),
               "macs_per_pixel": cfg.macs_per_pixel, **{k: overall(k) for k in keys},
               "median_encode_s": statistics.median(r["encode_s"] for r in rows),
               "median_decode_s": statistics.median(r["decode_s"] for r in rows),
               "threads": args.threads, "repeat": args.repeat}
    for name in refs:
        summary[f"pxc / {name}"] = summary["pxc_bpsp"] / summary[f"{name} bpsp"]
    print()
    print(f"{'codec':<14} {'bpsp':>7} {'pxc ratio':>10}")
    for k in keys:
        print(f"{k.replace(' bpsp', '').replace('_bpsp', ''):<14} {summary[k]:>7.3f} "
              f"{summary['pxc_bpsp'] / summary[k]:>10.3f}")
    print(f"median encode {summary['median_encode_s']:.2f} s, decode {summary['median_decode_s']:.2f} s "
          f"per image ({args.threads} threads); {cfg.macs_per_pixel:,} MACs/pixel")
    out = ROOT / "benchmarks" / "results" / f"kodak-{model.name}"
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "images": rows}, indent=2) + "\n")
    if args.card and args.limit is None:
        card_path = model.path.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["kodak"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()
                         if k not in ("model", "fingerprint")}
        card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
