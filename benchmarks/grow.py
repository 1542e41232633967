"""What growing a run's network would cost in coding time, before spending CPU on training it.

    python benchmarks/grow.py weights/runs/pxc-n --blocks 10 [--hidden 128] [--rounds 2] [--threads 2]

Takes the run's averaged weights, grows them (``model.grown``: new blocks as identities, wider
blocks' new channels unread; so the grown network codes exactly as the run does and only its
time differs), exports both into a scratch weights folder, and times each image through both,
alternating which goes first, every coding in a fresh process (``ab.run``: best of two encodes
and two decodes, round trip checked). The GEMMs cost the same whatever their weights, so the
untrained growth times what the trained one will. Prints medians over rounds per image and
writes ``benchmarks/results/grow.json``. Pause training while it runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from ab import ROOT, interleaved

sys.path.insert(0, str(ROOT))

from pxcodec import weights  # noqa: E402
from pxcodec.data import SHARED_DATA  # noqa: E402
from pxcodec.model import PixelCNN, grown  # noqa: E402
from pxcodec.train import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a training run folder")
    ap.add_argument("--blocks", type=int, help="blocks of the grown network (default: the run's)")
    ap.add_argument("--hidden", type=int, help="inner width of its blocks (default: the run's)")
    ap.add_argument("--images", type=Path, nargs="+",
                    default=[SHARED_DATA / "kodak" / f"kodim0{i}.png" for i in (1, 2, 3)])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    base, _ = load_checkpoint(args.run)
    cfg = dataclasses.replace(base.cfg, blocks=args.blocks or base.cfg.blocks,
                              hidden=args.hidden or base.cfg.inner)
    if cfg == base.cfg:
        raise SystemExit("give --blocks or --hidden beyond the run's")
    bigger = PixelCNN(cfg).eval()
    bigger.load_state_dict(grown(base.state_dict(), cfg, base.cfg.stream_max))
    models = {"run": base, "grown": bigger}
    print(f"{args.run}: {base.cfg.macs_per_pixel:,} MACs/pixel; grown: {cfg.macs_per_pixel:,}")
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            weights.save(weights.export(model), Path(folder) / f"{name}.npz")
        os.environ["PXC_WEIGHTS"] = folder  # the children find both models there by name
        rows = interleaved({name: (ROOT, name) for name in models}, args.images, args.rounds, args.threads,
                           label="model")
    for run_row, grown_row in zip(rows[::2], rows[1::2]):
        if run_row["bytes"] != grown_row["bytes"]:
            raise SystemExit(f"{run_row['image']}: the grown network wrote another file than the run's")
    for name in models:
        print(f"median over images, {name}: decode "
              f"{statistics.median(r['decode_s'] for r in rows if r['model'] == name):.2f} s")
    out = ROOT / "benchmarks" / "results" / "grow.json"
    out.write_text(json.dumps({"run": str(args.run), "config": dataclasses.asdict(base.cfg),
                               "grown": dataclasses.asdict(cfg), "macs_per_pixel": base.cfg.macs_per_pixel,
                               "grown_macs_per_pixel": cfg.macs_per_pixel, "rounds": args.rounds,
                               "threads": args.threads, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
