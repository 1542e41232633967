"""Where the model's bits go, channel by channel, against JPEG XL coding the same colour planes.

    python benchmarks/channel_costs.py [--model NAME] [--set NAME] [--images PATH…] [--crop 384]

The model codes R, then G given R, then B given R and G. For each image this prints the model's
ideal bits per pixel of each channel (``neural.pixel_costs``, −log2 of the exact integer
probabilities, tiles as the codec cuts them) beside JPEG XL e7 (through imagecodecs) on the whole
image and on three planes coded alone as grey images: R, G − R and B − G. A plane coded alone
knows nothing of the others, so where JPEG XL's G − R plane costs fewer bits than the model's G
given R, the model is not using the smoothness of the colour difference that a plain spatial
predictor finds. ``--crop`` takes a centred square of that size (0: whole images). Needs
imagecodecs (the ``full`` extra). Writes ``benchmarks/results/channel_costs-<set>-<model>.{csv,json}``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import neural, weights  # noqa: E402
from pxcodec.data import load_rgb  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402

COLUMNS = ("R", "G|R", "B|RG", "all")
PLANES = ("R", "G-R", "B-G")


def jxl_bits(pixels: np.ndarray) -> float:
    """Bits per pixel of JPEG XL e7 lossless on an (H, W, 3) uint8 image or an (H, W) uint16 plane."""
    import imagecodecs

    return len(imagecodecs.jpegxl_encode(np.ascontiguousarray(pixels), lossless=True, effort=7)) * 8 \
        / (pixels.shape[0] * pixels.shape[1])


def planes(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """R, G − R and B − G of (H, W, 3) uint8 pixels as uint16 grey planes (differences + 256)."""
    r, g, b = (pixels[..., i].astype(np.int32) for i in range(3))
    return {"R": r, "G-R": g - r + 256, "B-G": b - g + 256}


def centred(pixels: np.ndarray, size: int) -> np.ndarray:
    if not size:
        return pixels
    h, w = pixels.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(pixels[y:y + size, x:x + size])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=weights.DEFAULT_MODEL)
    ap.add_argument("--set", default="images", help="name of the image set, for the results' file names")
    ap.add_argument("--images", type=Path, nargs="+", required=True, help="PNG files or folders")
    ap.add_argument("--crop", type=int, default=0, help="centred square of this size (0: whole images)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.by_name(args.model)
    paths = sorted(p for d in args.images for p in (sorted(d.glob("*.png")) if d.is_dir() else [d]))
    rows = []
    print(f"{'image':<10}" + "".join(f"{'pxc ' + c:>10}" for c in COLUMNS) + f"{'JXL all':>10}"
          + "".join(f"{'JXL ' + p:>10}" for p in PLANES) + "   (bits per pixel)")
    for path in paths:
        pixels = centred(load_rgb(path).permute(1, 2, 0).contiguous().numpy(), args.crop)
        costs = neural.pixel_costs(pixels, model).mean((0, 1))
        row = {"image": path.stem, **{f"pxc {c}": float(v) for c, v in zip(COLUMNS, [*costs, costs.sum()])},
               "JXL all": jxl_bits(pixels),
               **{f"JXL {name}": jxl_bits(plane.astype(np.uint16)) for name, plane in planes(pixels).items()}}
        rows.append(row)
        print(f"{path.stem:<10}" + "".join(f"{v:>10.3f}" for v in list(row.values())[1:]), flush=True)
    summary = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k != "image"}
    print(f"{'mean':<10}" + "".join(f"{v:>10.3f}" for v in summary.values()))
    out = ROOT / "benchmarks" / "results" / f"channel_costs-{args.set}-{args.model}"
    write_tables(out, rows, {"model": args.model, "crop": args.crop, "mean": summary, "images": rows})
    print(f"wrote {out}.csv/.json")


if __name__ == "__main__":
    main()
