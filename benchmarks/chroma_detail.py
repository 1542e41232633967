"""How fine each image set's colour detail is: the mean horizontal step of chroma (Cb, Cr) per
unit step of luma (Y), JPEG's YCbCr. Photos whose chroma was stored at half resolution (cameras,
JPEG, video, Kodak's PhotoCD) score about half of what the training photos score.

    python benchmarks/chroma_detail.py   (writes benchmarks/results/chroma_detail.{csv,json})
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec.data import SHARED_DATA, halve_chroma, load_rgb, split_folder, to_ycbcr  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402


def chroma_detail(rgb: torch.Tensor) -> float:
    """Mean |horizontal difference| of Cb and Cr over that of Y, of a uint8 (3, H, W) image."""
    step = to_ycbcr(rgb[None].float())[0].diff(dim=-1).abs().mean((1, 2))
    return float((step[1] + step[2]) / 2 / step[0])


def main() -> None:
    train, held_out = split_folder(SHARED_DATA / "train")
    sets = {"training photos": [load_rgb(p) for p in train],
            "held-out photos": [load_rgb(p) for p in held_out]}
    sets["held-out, halved chroma"] = [halve_chroma(im[None])[0] for im in sets["held-out photos"]]
    sets["Kodak"] = [load_rgb(p) for p in sorted((SHARED_DATA / "kodak").glob("*.png"))]
    rows = []
    print(f"{'set':<26}{'images':>7}{'median':>8}{'min':>7}{'max':>7}")
    for name, images in sets.items():
        ratios = [chroma_detail(im) for im in images]
        row = {"set": name, "images": len(ratios), "median": round(statistics.median(ratios), 4),
               "min": round(min(ratios), 4), "max": round(max(ratios), 4)}
        rows.append(row)
        print(f"{name:<26}{row['images']:>7}{row['median']:>8.3f}{row['min']:>7.3f}{row['max']:>7.3f}")
    out = ROOT / "benchmarks" / "results" / "chroma_detail"
    write_tables(out, rows, rows)


if __name__ == "__main__":
    main()
