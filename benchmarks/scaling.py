"""Encode/decode time and peak memory against image size (DESIGN C3, issue "Fast decoding").

    python benchmarks/scaling.py [--megapixels 0.1 0.4 1.5 6 24] [--repeat 3] [--threads 2]

Each size is a held-out training photo (036) resized to that many pixels. Every measurement
runs in a fresh process. Its memory is the peak, sampled every 50 ms, of the proportional set
size (PSS, from ``/proc/<pid>/smaps_rollup``) summed over the process and the codec's forked
workers: the physical memory they use together, each shared page counted once (their RSS would
count the pages a worker shares with its parent twice). ``ru_maxrss`` of the process alone is
recorded too. Times are medians of ``--repeat`` runs. The round trip is checked. Writes
``benchmarks/results/scaling.csv`` and ``.json``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec.bench import write_tables  # noqa: E402

CHILD = r"""
import os, resource, sys, threading, time
import numpy as np, torch
sys.path.insert(0, {root!r})
from PIL import Image
from pxcodec import codec, images
torch.set_num_threads({threads})
src, pxc, what = sys.argv[1:4]

def pss_kb(pid):
    try:
        with open(f"/proc/{{pid}}/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except OSError:
        return 0

def tree(pid):
    try:
        with open(f"/proc/{{pid}}/task/{{pid}}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        kids = []
    return [pid] + [p for k in kids for p in tree(k)]

peak, done = [0], threading.Event()
def sample():
    while not done.wait(0.05):
        peak[0] = max(peak[0], sum(pss_kb(p) for p in tree(os.getpid())))
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
if what == "encode":
    data = codec.encode(images.read_file(src)).data
    open(pxc, "wb").write(data)
else:
    pixels = codec.decode(open(pxc, "rb").read()).pixels
    if not np.array_equal(pixels, np.asarray(Image.open(src).convert("RGB"))):
        raise SystemExit("round trip is not exact")
seconds = time.perf_counter() - t0
done.set()
print(seconds, peak[0] / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--megapixels", type=float, nargs="+", default=[0.1, 0.4, 1.5, 6, 24])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from pxcodec.data import SHARED_DATA
    child = CHILD.format(root=str(ROOT), threads=args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Image.open(SHARED_DATA / "train" / "036.png").convert("RGB")
        for mp in args.megapixels:
            scale = (mp * 1e6 / (base.width * base.height)) ** 0.5
            size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
            src, pxc = Path(tmp) / f"{mp}.png", Path(tmp) / f"{mp}.pxc"
            base.resize(size, Image.Resampling.LANCZOS).save(src)
            row = {"megapixels": size[0] * size[1] / 1e6, "width": size[0], "height": size[1]}
            for what in ("encode", "decode"):
                runs = [subprocess.run([sys.executable, "-c", child, str(src), str(pxc), what], check=True,
                                       capture_output=True, text=True).stdout.split() for _ in range(args.repeat)]
                row[f"{what}_s"] = statistics.median(float(r[0]) for r in runs)
                row[f"{what}_peak_pss_mb"] = max(float(r[1]) for r in runs)
                row[f"{what}_process_maxrss_mb"] = max(float(r[2]) for r in runs)
            row["bytes"] = pxc.stat().st_size
            row["decode_s_per_mp"] = row["decode_s"] / row["megapixels"]
            rows.append(row)
            print(f"{row['megapixels']:6.2f} MP  encode {row['encode_s']:7.2f} s ({row['encode_peak_pss_mb']:6.0f} MB)"
                  f"  decode {row['decode_s']:7.2f} s ({row['decode_peak_pss_mb']:6.0f} MB)", flush=True)
    out = ROOT / "benchmarks" / "results" / "scaling"
    write_tables(out, rows, {"threads": args.threads, "repeat": args.repeat, "rows": rows})


if __name__ == "__main__":
    main()
