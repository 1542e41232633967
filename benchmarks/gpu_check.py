"""Run on a machine with CUDA: the GPU encoder must write the CPU encoder's bytes (DESIGN C1).

    python benchmarks/gpu_check.py [--images DIR] [--limit N]

For each image: encode on CPU and on CUDA (int8 and float32 kernels), require identical
bytes, decode the CUDA file on the CPU and require identical pixels; report encode
throughput in megapixels per second. Writes ``benchmarks/results/gpu-check.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import codec, weights  # noqa: E402
from pxcodec.data import SHARED_DATA, load_rgb  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, default=SHARED_DATA / "kodak")
    ap.add_argument("--limit", type=int, default=4)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to check")
    model = weights.by_name()
    results = []
    for path in sorted(args.images.glob("*.png"))[:args.limit]:
        pixels = load_rgb(path).permute(1, 2, 0).contiguous().numpy()
        cpu, t_cpu = timed(lambda: codec.encode_rgb(pixels, model).data)
        row = {"image": path.stem, "megapixels": pixels.shape[0] * pixels.shape[1] / 1e6, "cpu_s": t_cpu}
        for kernel in ("int8", "float32"):
            codec.encode_rgb(pixels[:16], model, device="cuda", kernel=kernel)  # warm-up
            gpu, t_gpu = timed(lambda: codec.encode_rgb(pixels, model, device="cuda", kernel=kernel).data)
            row[f"cuda_{kernel}_s"] = t_gpu
            row[f"cuda_{kernel}_identical"] = gpu == cpu
        row["cpu_decodes_cuda_file"] = bool(np.array_equal(codec.decode_rgb(gpu), pixels))
        results.append(row)
        print(row, flush=True)
    ok = all(r["cuda_int8_identical"] and r["cuda_float32_identical"] and r["cpu_decodes_cuda_file"]
             for r in results)
    out = ROOT / "benchmarks" / "results" / "gpu-check.json"
    out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "identical": ok,
                               "images": results}, indent=2) + "\n")
    print("IDENTICAL" if ok else "MISMATCH")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
