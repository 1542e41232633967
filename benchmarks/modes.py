"""Size per pixel mode against PNG (issue: every PNG round-trips).

    python benchmarks/modes.py [--images N] [--size 256]

Centre crops of the held-out training photos (036–040; never Kodak) converted to each mode;
every .pxc is decoded and compared before its size counts. Writes
``benchmarks/results/modes.csv`` and ``.json``.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pxcodec  # noqa: E402
from pxcodec.data import SHARED_DATA, VALIDATION_NAMES  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402


def variants(rgb: Image.Image) -> dict[str, Image.Image]:
    w, h = rgb.size
    yy, xx = np.mgrid[:h, :w]
    soft = np.clip(255 * (1.5 - np.hypot(yy - h / 2, xx - w / 2) / (0.35 * w)), 0, 255).astype(np.uint8)
    opaque, vignette = rgb.copy(), rgb.copy()
    opaque.putalpha(255)
    vignette.putalpha(Image.fromarray(soft))
    grey = rgb.convert("L")
    la = grey.copy()
    la.putalpha(Image.fromarray(soft))
    deep = Image.fromarray((np.asarray(grey).astype(np.uint16) * 257))
    return {"RGB": rgb, "L": grey, "RGBA opaque": opaque, "RGBA vignette": vignette, "LA vignette": la,
            "P (256 colours)": rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
            "1 (dithered)": grey.convert("1"), "I;16": deep}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    rows = []
    for name in VALIDATION_NAMES[:args.images]:
        with Image.open(SHARED_DATA / "train" / f"{name}.png") as im:
            w, h = im.size
            s = args.size
            rgb = im.convert("RGB").crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
        for mode, image in variants(rgb).items():
            data = pxcodec.compress(image)
            back = pxcodec.decompress(data)
            if not (back.mode == image.mode and np.array_equal(np.asarray(back), np.asarray(image))):
                raise SystemExit(f"{name} {mode}: round trip is not exact")
            buf = io.BytesIO()
            image.save(buf, format="PNG", optimize=True)
            pixels = image.width * image.height
            rows.append({"image": name, "mode": mode, "pxc_mode": pxcodec.info(data).mode,
                         "pxc_bytes": len(data), "png_bytes": buf.tell(),
                         "pxc_bits_per_pixel": 8 * len(data) / pixels, "png_bits_per_pixel": 8 * buf.tell() / pixels,
                         "pxc_over_png": len(data) / buf.tell()})
            print(f"{name} {mode:<16} pxc {rows[-1]['pxc_bits_per_pixel']:7.3f}  PNG "
                  f"{rows[-1]['png_bits_per_pixel']:7.3f} bits/pixel  ratio {rows[-1]['pxc_over_png']:.3f}", flush=True)
    summary = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode]
        summary[mode] = {"pxc_bits_per_pixel": sum(r["pxc_bytes"] for r in sel) * 8 / (len(sel) * args.size ** 2),
                         "png_bits_per_pixel": sum(r["png_bytes"] for r in sel) * 8 / (len(sel) * args.size ** 2),
                         "pxc_over_png": sum(r["pxc_bytes"] for r in sel) / sum(r["png_bytes"] for r in sel),
                         "coded_as": sel[0]["pxc_mode"]}
    print(f"\n{'mode':<18}{'coded as':<10}{'pxc b/px':>9}{'PNG b/px':>9}{'pxc/PNG':>9}")
    for mode, s in summary.items():
        print(f"{mode:<18}{s['coded_as']:<10}{s['pxc_bits_per_pixel']:>9.3f}{s['png_bits_per_pixel']:>9.3f}"
              f"{s['pxc_over_png']:>9.3f}")
    out = ROOT / "benchmarks" / "results" / "modes"
    write_tables(out, rows, {"summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
