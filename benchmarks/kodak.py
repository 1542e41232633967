"""Kodak benchmark: real .pxc files against PNG, WebP (and JPEG XL / JPEG 2000 with
imagecodecs), measured in the same run, plus encode/decode times and the cost of quantisation.

    python benchmarks/kodak.py [--images PATH…] [--model NAME|auto] [--run weights/runs/NAME] [--repeat 1] [--effort 2]

With ``--images`` naming the held-out training photos (036–040) and ``--set validation``,
the same script measures the validation set.

Every .pxc file is decoded and compared with the original before its size counts. Writes
``benchmarks/results/kodak-<model>.{csv,json,png}`` and prints a table; ``--card`` records the
summary in the model's card.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import adapt, bench, weights  # noqa: E402
from pxcodec.data import SHARED_DATA, load_rgb  # noqa: E402

#: ``--model`` value for the encoder's own choice of model per image.
AUTO = "auto"


def float_bpsp(run: Path, paths: list[Path]) -> tuple[float, int]:
    """Bits per subpixel of the float (QAT, averaged) model of a training run's checkpoint on
    whole images, and the checkpoint's step (the shipped model's only if it was exported there)."""
    from pxcodec.train import load_checkpoint
    model, state = load_checkpoint(run)
    bits = subpixels = 0
    with torch.no_grad():
        for p in paths:
            x = load_rgb(p)[None]
            bits += float(model.nll(x).double().sum()) / math.log(2)
            subpixels += x.numel()
    return bits / subpixels, state["step"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, nargs="+", default=[SHARED_DATA / "kodak"],
                    help="image files or folders (default: the 24 Kodak images)")
    ap.add_argument("--model", default=AUTO, help=f"a shipped model, or {AUTO!r} (the default): the "
                                                  "encoder's choice per image, as pxc compress makes it")
    ap.add_argument("--run", type=Path, default=None, help="training run, to report the float model's bits")
    ap.add_argument("--repeat", type=int, default=1, help="encodes per image (median time)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", default="kodak", help="name of the image set: results go to <set>-<model>.*, "
                                                   "and under <set> in the card")
    ap.add_argument("--card", action="store_true", help="record the summary in the model's card")
    ap.add_argument("--effort", type=int, default=adapt.DEFAULT_EFFORT, choices=sorted(adapt.EFFORTS),
                    help="encoder effort (pxc compress --effort)")
    args = ap.parse_args()
    if args.card and args.model == AUTO:
        ap.error("--card records one model's results: name it with --model")
    torch.set_num_threads(args.threads)
    model = None if args.model == AUTO else weights.by_name(args.model)
    paths = bench.rgb_images(args.images)[:args.limit]
    rows = bench.run(paths, model, args.repeat,
                     on_row=lambda r: print(f"{r.image}: pxc {r.bpsp():.3f} PNG {r.bpsp('PNG'):.3f} "
                                            f"WebP {r.bpsp('WebP'):.3f}  enc {r.encode_s:.2f}s dec {r.decode_s:.2f}s",
                                            flush=True),
                     effort=args.effort)
    used = [model] if model else [weights.by_name(name) for name in weights.DEFAULT_MODELS]
    macs = max(weights.load(m).cfg.macs_per_pixel for m in used)
    extra = {"model": args.model, "fingerprints": [m.fingerprint.hex() for m in used], "macs_per_pixel": macs,
             "threads": args.threads, "repeat": args.repeat, "effort": args.effort}
    if args.run:
        extra["float_bpsp"], extra["float_step"] = float_bpsp(args.run, paths)
    print()
    print(bench.table(rows))
    summary = {**bench.summary(rows), **extra}
    if "float_bpsp" in extra:
        print(f"float (QAT) model at step {extra['float_step']:,} {extra['float_bpsp']:.4f} bpsp, "
              f"integer model ideal {summary['ideal_bpsp']:.4f}, "
              f"real files {summary['pxc_bpsp']:.4f}")
    print(f"{macs:,} MACs/pixel; median encode {summary['median_encode_s']:.2f} s, "
          f"decode {summary['median_decode_s']:.2f} s ({args.threads} threads)")
    bench.write(rows, ROOT / "benchmarks" / "results", f"{args.set}-{args.model}", extra)
    if args.card and args.limit is None:
        card_path = model.path.with_suffix(".json")
        card = json.loads(card_path.read_text())
        entry = {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()
                 if k not in ("model", "fingerprints")}
        if entry.get("float_step") != card["training"]["steps"]:  # the run went past the shipped model
            entry.pop("float_bpsp", None)
            entry.pop("float_step", None)
        card[args.set] = entry
        card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
