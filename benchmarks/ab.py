"""Time this checkout against another one, interleaved, on the same images (before/after figures).

    git worktree add /tmp/base <commit>
    python benchmarks/ab.py /tmp/base [--images PATH…] [--crop 128x384] [--rounds 3] [--threads 1] [--model NAME]

On a shared machine two runs minutes apart can differ by 20 %, so a change is only measured
against the code before it run in the same minutes: every round runs each image once per
checkout, alternating which goes first, each in a fresh process that imports ``pxcodec`` from
its checkout, encodes (best of two), decodes (best of two) and checks the round trip. Prints the
medians over rounds and writes ``benchmarks/results/ab.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1])
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
model = sys.argv[5] or None
from PIL import Image
import pxcodec
pixels = np.asarray(Image.open(sys.argv[2]).convert("RGB"))
if sys.argv[3]:
    h, w = map(int, sys.argv[3].split("x"))
    pixels = pixels[:h, :w]
pixels = np.ascontiguousarray(pixels)

def best(call):
    times = []
    for _ in range(2):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return out, min(times)

data, encode_s = best(lambda: pxcodec.compress(pixels, model=model))
back, decode_s = best(lambda: pxcodec.decompress(data, as_array=True))
if not np.array_equal(back, pixels):
    raise SystemExit("round trip is not exact")
print(json.dumps({"encode_s": encode_s, "decode_s": decode_s, "bytes": len(data)}))
"""


def run(checkout: Path, image: Path, crop: str, threads: int, model: str) -> dict:
    """One image through one checkout's codec (with the shipped ``model``, or its default), in a
    fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(checkout), str(image), crop, str(threads), model],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{checkout} on {image.name}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleaved(subjects: dict[str, tuple[Path, str]], images: list[Path], rounds: int, threads: int,
                crop: str = "", label: str = "checkout") -> list[dict]:
    """Time every image through each subject (a checkout and the model it codes with), in fresh
    processes, ``rounds`` times, alternating which subject goes first; print and return the
    medians per image and subject (``label`` names the subject's column)."""
    runs: dict[str, dict[str, list[dict]]] = {name: {p.name: [] for p in images} for name in subjects}
    for r in range(rounds):
        order = list(subjects) if r % 2 == 0 else list(subjects)[::-1]
        for image in images:
            for name in order:
                checkout, model = subjects[name]
                runs[name][image.name].append(run(checkout, image, crop, threads, model))
    rows = []
    print(f"{'image':<14}{label:<10}{'encode s':>10}{'decode s':>10}{'bytes':>10}")
    for image in images:
        for name in subjects:
            measured = runs[name][image.name]
            row = {"image": image.name, label: name,
                   "encode_s": statistics.median(m["encode_s"] for m in measured),
                   "decode_s": statistics.median(m["decode_s"] for m in measured),
                   "bytes": measured[0]["bytes"]}
            rows.append(row)
            print(f"{image.name:<14}{name:<10}{row['encode_s']:>10.3f}{row['decode_s']:>10.3f}{row['bytes']:>10}")
    return rows


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from pxcodec.data import SHARED_DATA

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree of the base commit)")
    ap.add_argument("--images", type=Path, nargs="+", default=[SHARED_DATA / "kodak" / "kodim01.png"])
    ap.add_argument("--crop", default="", help="HxW: time only the top-left crop of each image")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="", help="a shipped model both checkouts have (default: each one's default)")
    args = ap.parse_args()
    checkouts = {"this": ROOT, "other": args.other.resolve()}
    rows = interleaved({name: (path, args.model) for name, path in checkouts.items()}, args.images, args.rounds,
                       args.threads, args.crop)
    for row in rows:
        row["path"] = str(checkouts[row["checkout"]])
    out = ROOT / "benchmarks" / "results" / "ab.json"
    out.write_text(json.dumps({"rounds": args.rounds, "threads": args.threads, "crop": args.crop, "model": args.model,
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
