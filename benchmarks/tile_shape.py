"""What the tile shape costs and saves: real file sizes and decode times of the same pictures coded
with tiles of several shapes (the shape is a format parameter each file records, so any decodes).

    python benchmarks/tile_shape.py --images /tmp/hs3/*.png [--shapes 128x384 256x384 128x768]
        [--model pxc-y] [--crop 768x512] [--decode-rounds 0] [--threads 2]

Each image is cut to a centre crop of ``--crop`` (Kodak's size by default) and, where it is tall
enough, to the same crop turned portrait; each crop is coded with every shape at the default
effort. Larger tiles pay each tile's adaptation prefix over more pixels and cut less context, but
fit their offsets more coarsely and give the decoder fewer, longer lanes. Sizes are compared with
the first shape as ratios; ``--decode-rounds N`` also times N interleaved decodes of every file
(medians). Writes ``benchmarks/results/tile_shape.csv`` and ``.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import images, weights  # noqa: E402
from pxcodec.codec import decode, encode  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402


def pair(text: str) -> tuple[int, int]:
    """'AxB' as (A, B)."""
    a, b = text.lower().split("x")
    return int(a), int(b)


def crops(path: Path, width: int, height: int) -> list[tuple[str, Image.Image]]:
    """The centre crop of ``width`` × ``height`` and, where the image is tall enough, the same
    crop turned portrait (``height`` × ``width``)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
    out = []
    for name, (cw, ch) in (("landscape", (width, height)), ("portrait", (height, width))):
        if cw <= im.width and ch <= im.height:
            x, y = (im.width - cw) // 2, (im.height - ch) // 2
            out.append((name, im.crop((x, y, x + cw, y + ch))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, nargs="+", required=True)
    ap.add_argument("--shapes", type=pair, nargs="+", default=[(128, 384), (256, 384), (128, 768)],
                    help="tile shapes as ROWSxCOLUMNS, the first the baseline")
    ap.add_argument("--model", default="pxc-y")
    ap.add_argument("--crop", type=pair, default=(768, 512), help="WIDTHxHEIGHT of the landscape crop")
    ap.add_argument("--decode-rounds", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.by_name(args.model)
    names = [f"{r}x{c}" for r, c in args.shapes]
    rows, files = [], {}
    print(f"{'image':<28}" + "".join(f"{n:>16}" for n in names))
    for path in args.images:
        for orientation, crop in crops(path, *args.crop):
            picture = images.from_image(crop)
            row = {"image": path.stem, "folder": path.parent.name, "orientation": orientation}
            for name, (r, c) in zip(names, args.shapes):
                files[len(rows), name] = encode(picture, model, stream_rows=r, stream_cols=c).data
                row[f"bytes_{name}"] = len(files[len(rows), name])
            rows.append(row)
            base = row[f"bytes_{names[0]}"]
            print(f"{path.parent.name + '/' + path.stem + ' ' + orientation:<28}{base:>16,}" + "".join(
                f"{100 * (row[f'bytes_{n}'] / base - 1):>+15.3f}%" for n in names[1:]), flush=True)
    times: dict[tuple[int, str], list[float]] = {key: [] for key in files}
    for _ in range(args.decode_rounds):
        for key, data in files.items():
            start = time.perf_counter()
            decode(data)
            times[key].append(time.perf_counter() - start)
    summary = {}
    for name in names:
        total = sum(r[f"bytes_{name}"] for r in rows)
        summary[name] = {"bytes": total,
                         "percent": 100 * (total / sum(r[f"bytes_{names[0]}"] for r in rows) - 1),
                         "larger_than_baseline": sum(r[f"bytes_{name}"] > r[f"bytes_{names[0]}"] for r in rows)}
        if args.decode_rounds:
            for i, row in enumerate(rows):
                row[f"decode_s_{name}"] = statistics.median(times[i, name])
            summary[name]["decode_s_sum_of_medians"] = sum(r[f"decode_s_{name}"] for r in rows)
    print(f"\n{'shape':<10}{'bytes':>14}{'vs first':>10}{'larger':>8}" + ("  decode s (sum of medians)" if args.decode_rounds else ""))
    for name, s in summary.items():
        print(f"{name:<10}{s['bytes']:>14,}{s['percent']:>+9.3f}%{s['larger_than_baseline']:>8}"
              + (f"{s['decode_s_sum_of_medians']:>12.2f}" if args.decode_rounds else ""))
    out = ROOT / "benchmarks" / "results" / "tile_shape"
    write_tables(out, rows, {"model": model.name, "crop": args.crop, "summary": summary, "images": rows})
    print(f"wrote {out}.csv and .json")


if __name__ == "__main__":
    main()
