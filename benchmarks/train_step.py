"""Time a training step with the activations channels last or first and the convolutions'
backward pass in bfloat16 or float32.

    python benchmarks/train_step.py [--run weights/runs/pxc-t] [--steps 12] [--rounds 3] [--threads 2]

Each round compiles the run's training loss (``pxc train --compile``) once per setting
(``SETTINGS``: layout, backward), in the same process, in a rotating order, and times
``--steps`` full steps (loss, backward, Adam) on the run's crop size and batch; prints the median
step of each setting and its ratio to the first, training's own (``model.MEMORY_FORMAT``,
``model.BFLOAT16_BACKWARD``), and writes ``benchmarks/results/train_step.json``. Pause a
training run first: it shares the cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec import model as float_model  # noqa: E402
from pxcodec.data import SHARED_DATA, CropSampler, split_folder  # noqa: E402
from pxcodec.model import PixelCNN  # noqa: E402


#: The settings timed: the activations' memory layout and the convolutions' backward arithmetic.
SETTINGS = {"last/bfloat16": (torch.channels_last, True), "first/bfloat16": (torch.contiguous_format, True),
            "first/float32": (torch.contiguous_format, False)}


def median_step(setting: str, state: dict, crops: list[torch.Tensor], steps: int) -> float:
    """Median seconds of ``steps`` compiled training steps of the checkpoint's model."""
    float_model.MEMORY_FORMAT, float_model.BFLOAT16_BACKWARD = SETTINGS[setting]
    torch._dynamo.reset()
    net = PixelCNN(state["options"].config)
    net.load_state_dict(state["model"])
    loss_of = torch.compile(net.nll, options={"layout_optimization": False})
    optim = torch.optim.Adam(net.parameters(), lr=1e-7)
    times = []
    for i in range(steps + 2):  # two to compile and warm up
        t = time.perf_counter()
        loss = loss_of(crops[i % len(crops)]).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=ROOT / "weights" / "runs" / "pxc-t")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not float_model.BFLOAT16_BACKWARD:
        sys.exit("this CPU has no native bfloat16: training keeps float32 throughout")
    torch.set_num_threads(args.threads)
    state = torch.load(args.run / "checkpoint.pt", weights_only=False, map_location="cpu")
    opt = state["options"]
    sampler = CropSampler(split_folder(SHARED_DATA / "train")[0], opt.crop, opt.chroma)
    gen = torch.Generator().manual_seed(0)
    crops = [sampler.batch(opt.batch, gen) for _ in range(4)]
    names = list(SETTINGS)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name].append(median_step(name, state, crops, args.steps))
            print(f"round {r + 1} {name:14s} {results[name][-1]:.3f} s a step", flush=True)
    medians = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{'layout/backward':14s} {'s a step':>9s} {'ratio':>6s}")
    for k, v in medians.items():
        print(f"{k:14s} {v:9.3f} {v / medians[names[0]]:6.2f}")
    out = ROOT / "benchmarks" / "results" / "train_step.json"
    out.write_text(json.dumps({"run": str(args.run.relative_to(ROOT)), "config": str(opt.config),
                               "batch": opt.batch, "crop": opt.crop, "threads": args.threads,
                               "steps": args.steps, "rounds": results, "medians": medians}, indent=2) + "\n")
    print(out.relative_to(ROOT))


if __name__ == "__main__":
    main()
