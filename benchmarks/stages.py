"""Where encode and decode time goes, stage by stage, on one core (issue "Fast decoding").

    python benchmarks/stages.py [--images PATH…] [--limit 6] [--model NAME] [--repeat 3]

Runs the codec's own encoder and decoder under ``cProfile`` in one process with one torch
thread (tiles one after another, no worker processes) and charges each stage the cumulative
time of the function that does it: the network (``band_trunk`` when encoding, the head after the
adaptation's fit counted in the glue; the wavefront's ``params`` or ``params_and_unadapted`` when
decoding), the adaptation search (``adapt.choose``), the 256-way PMFs
(``IntegerMixture.pmf``; when decoding ``StepMixture.pmf``, which also conditions each channel
and picks its learned offset) and the range coder (``StreamEncoder.encode`` / ``StreamDecoder.decode``);
the rest is the glue between them (ordering, gathers, table assembly). Seconds per image are
medians over images of the median of ``--repeat`` runs. Also prints the network stage's floor:
the model's MACs at this core's float32 GEMM rate, measured in the same run. Writes
``benchmarks/results/stages-<model>.{csv,json}``.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import adapt, coder, mixture, network, neural, steps, weights  # noqa: E402
from pxcodec.config import BLOCK_TAPS  # noqa: E402
from pxcodec.data import SHARED_DATA, load_rgb  # noqa: E402
from pxcodec.bench import write_tables  # noqa: E402

#: Stage name → the function whose cumulative time is the stage's, per direction.
STAGES = {
    "encode": {"network": network.IntegerPixelCNN.band_trunk, "adaptation": adapt.choose,
               "PMFs": mixture.IntegerMixture.pmf, "coder": coder.StreamEncoder.encode},
    # _params: under both params and params_and_unadapted (what models with a neighbour net call)
    "decode": {"network": network.Wavefront._params, "PMFs": steps.StepMixture.pmf,
               "coder": coder.StreamDecoder.decode},
}


def profiled(call) -> tuple[object, dict[tuple, float], float]:
    """Run ``call()`` under cProfile: its result, (file, line, function) → cumulative seconds,
    and the total."""
    prof = cProfile.Profile()
    out = prof.runcall(call)
    stats = pstats.Stats(prof).stats  # (file, line, name) → (calls, calls, tottime, cumtime, callers)
    return out, {key: value[3] for key, value in stats.items()}, sum(v[2] for v in stats.values())


def stage_seconds(direction: str, cumulative: dict, total: float) -> dict[str, float]:
    """Seconds per stage of one profiled run, and the rest under ``glue`` and ``total``."""
    out = {}
    for stage, fn in STAGES[direction].items():
        code = fn.__code__
        out[stage] = sum(t for (path, line, _), t in cumulative.items()
                         if path == code.co_filename and line == code.co_firstlineno)
    out["glue"] = total - sum(out.values())
    out["total"] = total
    return out


def gemm_rate(channels: int, repeat: int = 5) -> float:
    """Multiply-accumulates per second of one core's float32 GEMM at the shape of the encoder's
    trunk GEMMs (``GEMM_PIXELS`` rows, a block's taps × channels in, channels out): the rate at
    which the network stage would run if it were nothing but GEMMs (median of ``repeat``)."""
    m, k = network.IntegerPixelCNN.GEMM_PIXELS, len(BLOCK_TAPS) * channels
    a, b = torch.randn(m, k), torch.randn(k, channels)
    a @ b  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return m * k * channels / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, nargs="+", default=[SHARED_DATA / "kodak"])
    ap.add_argument("--limit", type=int, default=6, help="only the first N images")
    ap.add_argument("--model", default=weights.DEFAULT_MODEL)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)  # one process, one core: the stages are not split between workers
    paths = sorted(p for d in args.images for p in (sorted(d.glob("*.png")) if d.is_dir() else [d]))
    paths = paths[:args.limit]
    model = weights.by_name(args.model)
    rows = []
    for path in paths:
        pixels = load_rgb(path).permute(1, 2, 0).contiguous().numpy()
        h, w = pixels.shape[:2]
        runs: dict[str, list[dict[str, float]]] = {"encode": [], "decode": []}
        for _ in range(args.repeat):
            (streams, _), cum, total = profiled(lambda: neural.encode_pixels(pixels, model))
            runs["encode"].append(stage_seconds("encode", cum, total))
            decoded, cum, total = profiled(lambda: neural.decode_pixels(
                streams, model.fingerprint, h, w, 3, neural.STREAM_ROWS, True, stream_cols=neural.STREAM_COLS))
            if not (decoded == pixels).all():
                raise SystemExit(f"{path.name}: round trip is not exact")
            runs["decode"].append(stage_seconds("decode", cum, total))
        for direction, measured in runs.items():
            row = {"image": path.stem, "direction": direction}
            row.update({k: statistics.median(m[k] for m in measured) for k in measured[0]})
            rows.append(row)
            print(f"{path.stem} {direction}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()
                                                          if isinstance(v, float)), flush=True)
    summary = {}
    cfg = weights.load(model).cfg
    pixels_median = statistics.median(int(np.prod(Image.open(p).size)) for p in paths)
    floor = cfg.macs_per_pixel * pixels_median / gemm_rate(cfg.channels)
    print(f"\nthe network's {cfg.macs_per_pixel:,} MACs/pixel at this core's float32 GEMM rate: "
          f"{floor:.2f} s/image (the network stage's floor)")
    print(f"\n{'median s/image':16}" + "".join(f"{s:>12}" for s in ("network", "adaptation", "PMFs",
                                                                     "coder", "glue", "total")))
    for direction in STAGES:
        mine = [r for r in rows if r["direction"] == direction]
        summary[direction] = {k: statistics.median(r[k] for r in mine) for k in mine[0]
                              if isinstance(mine[0][k], float)}
        print(f"{direction:16}" + "".join(f"{summary[direction][s]:12.2f}" if s in summary[direction]
                                          else f"{'—':>12}" for s in ("network", "adaptation", "PMFs",
                                                                      "coder", "glue", "total")))
    out = ROOT / "benchmarks" / "results" / f"stages-{args.model}"
    fields = ["image", "direction", "network", "adaptation", "PMFs", "coder", "glue", "total"]
    write_tables(out, rows, {"model": args.model, "threads": 1, "repeat": args.repeat,
                             "images": [p.name for p in paths], "median_seconds": summary,
                             "network_floor_seconds": floor, "rows": rows}, fields)
    print(f"wrote {out}.csv/.json")


if __name__ == "__main__":
    main()
