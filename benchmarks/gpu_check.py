"""Run on a machine with CUDA: the GPU encoder must write the CPU encoder's bytes (DESIGN C1).

    python benchmarks/gpu_check.py [--images DIR] [--limit N] [--megapixels 24] [--large PHOTO] [--device cuda]

For each Kodak image, and one photo resized to ``--megapixels``: encode on the CPU and on the
device (int8 and float32 kernels), each choosing its model as ``pxc compress`` does, require
identical bytes, decode the device's file on the CPU
and require identical pixels; report encode throughput in megapixels per second (the device's
after a warm-up). ``--device cpu`` runs the same checks CPU against CPU, to try the script on a
machine without a GPU. Writes ``benchmarks/results/gpu-check.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import codec, images, weights  # noqa: E402
from pxcodec.data import SHARED_DATA  # noqa: E402


def timed(fn, device: str):
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def check(name: str, pixels: np.ndarray, model: weights.ModelFile | None, device: str) -> dict:
    """Bytes from the CPU and from ``device`` with each kernel (with ``model``, or the model each
    chooses); the CPU decode of the latter."""
    picture = images.from_array(pixels)
    mp = pixels.shape[0] * pixels.shape[1] / 1e6
    cpu, t_cpu = timed(lambda: codec.encode(picture, model).data, "cpu")
    row = {"image": name, "megapixels": mp, "cpu_s": t_cpu, "cpu_mp_per_s": mp / t_cpu}
    for kernel in ("int8", "float32"):
        codec.encode(images.from_array(pixels[:16]), model, device=device, kernel=kernel)  # warm-up
        data, seconds = timed(lambda: codec.encode(picture, model, device=device, kernel=kernel).data, device)
        row[f"{device}_{kernel}_s"] = seconds
        row[f"{device}_{kernel}_mp_per_s"] = mp / seconds
        row[f"{device}_{kernel}_identical"] = data == cpu
    row["cpu_decodes_device_file"] = bool(np.array_equal(codec.decode(data).pixels, pixels))
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, default=SHARED_DATA / "kodak")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--megapixels", type=float, default=24, help="size of the large photo (0: none)")
    ap.add_argument("--large", type=Path, default=SHARED_DATA / "train" / "036.png",
                    help="the photo resized to --megapixels")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to check")
    model = None  # the encoder's own choice per image, as pxc compress makes it: part of what must match
    results = []
    for path in sorted(args.images.glob("*.png"))[:args.limit]:
        with Image.open(path) as im:
            results.append(check(path.stem, np.asarray(im.convert("RGB")).copy(), model, args.device))
    if args.megapixels:
        with Image.open(args.large) as im:
            base = im.convert("RGB")
        scale = (args.megapixels * 1e6 / (base.width * base.height)) ** 0.5
        big = base.resize((round(base.width * scale), round(base.height * scale)), Image.Resampling.LANCZOS)
        results.append(check(f"{args.large.stem} at {args.megapixels:g} MP", np.asarray(big).copy(), model,
                             args.device))
    ok = all(r[f"{args.device}_int8_identical"] and r[f"{args.device}_float32_identical"]
             and r["cpu_decodes_device_file"] for r in results)
    name = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    out = ROOT / "benchmarks" / "results" / "gpu-check.json"
    out.write_text(json.dumps({"device": name, "identical": ok, "images": results}, indent=2) + "\n")
    print("IDENTICAL" if ok else "MISMATCH")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
