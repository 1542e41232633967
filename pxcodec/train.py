"""``pxc train``: quantisation-aware training of the PixelCNN, resumable, with a logged curve.

A run lives in one folder: ``checkpoint.pt`` (model, optimiser, step, RNG state, wall time) and
``curve.csv`` (one row per log interval). Re-running the same command resumes where the
checkpoint left off; ``pxc export`` turns the checkpoint into shipped integer weights.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import weights
from .config import ModelConfig
from .data import CropSampler, fixed_crops, halve_chroma, split_folder
from .model import BFLOAT16_BACKWARD, PixelCNN, grown

BITS_PER_NAT = 1 / math.log(2)
#: Columns of ``curve.csv``; ``val_chroma_bpsp`` is the validation crops with halved chroma. A
#: curve begun before a column existed keeps its own header, and rows are written to it.
CURVE_COLUMNS = ("step", "seconds", "lr", "train_bpsp", "val_bpsp", "val_chroma_bpsp")


@dataclass
class TrainOptions:
    """Everything a run needs besides its folder; stored in the checkpoint on first start."""

    data: Path
    config: ModelConfig
    steps: int = 100_000
    batch: int = 8
    crop: int = 64
    chroma: float = 0.0
    pipelines: str = "bilinear"
    downscale: float = 0.0
    soften: float = 0.0
    grain: float = 0.0
    lr: float = 5e-4
    warmup: int = 200
    half_life: int = 20_000
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    device: str = "cpu"
    ema: float = 0.999


#: Options a resumed run may change (its architecture stays as it was). ``data`` is where the
#: photos are, which may differ between machines (a GPU lease gets a copy), not which they are.
RESUMABLE = ("steps", "device", "data", "lr", "half_life", "ema", "batch", "crop", "chroma", "pipelines",
             "downscale", "soften", "grain")


def _hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)"


def learning_rate(opt: TrainOptions, step: int) -> float:
    """Linear warm-up, then exponential decay with the configured half-life."""
    return opt.lr * min(1.0, (step + 1) / opt.warmup) * 0.5 ** (step / opt.half_life)


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def validation_bpsp(model: PixelCNN, crops: torch.Tensor, device: str) -> float:
    """Mean bits per subpixel of the (fake-quantised) model on fixed validation crops."""
    model.eval()
    total = 0.0
    for chunk in crops.split(4):
        total += model.nll(chunk.to(device)).double().sum().item()
    model.train()
    return total * BITS_PER_NAT / crops.numel()


def train(run: Path, opt: TrainOptions, minutes: float | None = None, log=print,
          changes: tuple[str, ...] = ("steps", "device"), start_from: Path | None = None,
          compiled: bool = False) -> Path:
    """Train (or resume) the run in ``run`` until ``opt.steps`` or ``minutes`` of wall time.

    A resumed run keeps its stored options except the ``changes`` (a subset of ``RESUMABLE``),
    which are taken from ``opt``; the curve logs the learning rate of every interval. A new run
    may ``start_from`` another run's trained (averaged) weights, grown to ``opt.config``
    (``model.grown``), with its step count and training time, and a fresh optimiser.
    ``compiled`` runs the training loss through ``torch.compile`` (speed only: the same model,
    the same checkpoint).
    """
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "checkpoint.pt"
    torch.manual_seed(opt.seed)
    # map_location: a checkpoint written on a GPU resumes on a machine without one
    state = torch.load(ckpt_path, weights_only=False, map_location="cpu") if ckpt_path.exists() else None
    if state is not None and start_from is not None:
        raise ValueError(f"{run} has begun already; start_from is only for a new run")
    if state is not None:
        stored = dataclasses.replace(TrainOptions(opt.data, opt.config), **vars(state["options"]))
        opt = dataclasses.replace(stored, **{k: getattr(opt, k) for k in changes if k in RESUMABLE})
    model = PixelCNN(opt.config).to(opt.device)
    average = PixelCNN(opt.config).to(opt.device).requires_grad_(False)
    optim = torch.optim.Adam(model.parameters(), lr=opt.lr)
    gen = torch.Generator().manual_seed(opt.seed)
    step, elapsed, source = 0, 0.0, None
    average.load_state_dict(model.state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        gen.set_state(state["rng"])
        average.load_state_dict(state.get("ema", state["model"]))
        step, elapsed = state["step"], state["seconds"]
        log(f"resumed {run} at step {step} ({elapsed / 60:.1f} min trained)")
    elif start_from is not None:
        source = torch.load(start_from / "checkpoint.pt", weights_only=False, map_location="cpu")
        model.load_state_dict(grown(source.get("ema", source["model"]), opt.config,
                                    source["options"].config.stream_max))
        average.load_state_dict(model.state_dict())
        step, elapsed = source["step"], source["seconds"]
        log(f"started {run} from {start_from} at step {step} ({elapsed / 60:.1f} min trained), "
            f"grown from {source['options'].config} to {opt.config}")
    if BFLOAT16_BACKWARD and opt.device == "cpu":
        log("the convolutions' backward passes in bfloat16 (native on this CPU; model.BFLOAT16_BACKWARD)")
    # Inductor's own layout switch made the convolutions' float32 backward pass twice as slow on
    # CPU (a step 0.7–0.8 s without it instead of 0.9 s, 7 blocks); the layout is the model's
    # (``model.MEMORY_FORMAT``), measured with the bfloat16 backward.
    loss_of = torch.compile(model.nll, options={"layout_optimization": False}) if compiled else model.nll
    train_paths, val_paths = split_folder(opt.data)
    sampler = CropSampler(train_paths, opt.crop, opt.chroma, opt.downscale, opt.pipelines, opt.soften, opt.grain)
    val_sets = {"val_bpsp": fixed_crops(val_paths, 128, 4)}
    val_sets["val_chroma_bpsp"] = halve_chroma(val_sets["val_bpsp"])
    curve_path = run / "curve.csv"
    header = None
    if curve_path.exists():
        with curve_path.open() as f:
            header = next(csv.reader(f), None)
    deadline = time.monotonic() + minutes * 60 if minutes else math.inf

    earlier = state or source
    hardware = sorted(set(earlier.get("hardware", []) if earlier else []) | {_hardware(opt.device)})

    def checkpoint() -> None:
        _atomic_save({"options": opt, "model": model.state_dict(), "ema": average.state_dict(),
                      "optim": optim.state_dict(),
                      "rng": gen.get_state(), "step": step, "seconds": elapsed,
                      "hardware": hardware}, ckpt_path)

    if state is None:  # a new run is resumable at once: resuming it never starts another model
        checkpoint()
    with curve_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, header or CURVE_COLUMNS, extrasaction="ignore")
        if header is None:
            writer.writeheader()
        running, count, t0 = 0.0, 0, time.monotonic()
        while step < opt.steps and time.monotonic() < deadline:
            lr = learning_rate(opt, step)
            for group in optim.param_groups:
                group["lr"] = lr
            x = sampler.batch(opt.batch, gen).to(opt.device)
            loss = loss_of(x).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            with torch.no_grad():
                for pa, pm in zip(average.parameters(), model.parameters()):
                    pa.lerp_(pm, 1.0 - opt.ema)
            step += 1
            running += loss.item() * BITS_PER_NAT
            count += 1
            if step % opt.log_every == 0 or step == opt.steps:
                now = time.monotonic()
                elapsed += now - t0
                t0 = now
                row = {"step": step, "seconds": round(elapsed, 1), "lr": f"{lr:.3g}",
                       "train_bpsp": round(running / count, 4)}
                if step % opt.val_every == 0:
                    row |= {k: round(validation_bpsp(average, crops, opt.device), 4)
                            for k, crops in val_sets.items() if k in writer.fieldnames}
                writer.writerow(row)
                f.flush()
                log(f"step {step}  {elapsed / 60:.1f} min  train {running / count:.4f} bpsp"
                    + "".join(f"  {k} {v:.4f}" for k, v in row.items() if k.startswith("val")))
                running, count = 0.0, 0
                checkpoint()
        elapsed += time.monotonic() - t0
        checkpoint()
    return ckpt_path


def load_checkpoint(run: Path, also: tuple[Path, ...] = ()) -> tuple[PixelCNN, dict]:
    """The averaged (EMA) float model of a run's checkpoint, and the checkpoint itself; with
    ``also`` (earlier checkpoints of the same run), the mean of all their averaged weights: a
    longer average than the EMA's (stochastic weight averaging), for a run whose small batches
    leave the EMA still noisy."""
    state = torch.load(run / "checkpoint.pt", weights_only=False, map_location="cpu")
    model = PixelCNN(state["options"].config)
    averaged = [state.get("ema", state["model"])]
    steps = [state["step"]]
    for path in also:
        other = torch.load(path, weights_only=False, map_location="cpu")
        if other["options"].config != state["options"].config:
            raise ValueError(f"{path} is a checkpoint of another architecture than {run}'s")
        averaged.append(other.get("ema", other["model"]))
        steps.append(other["step"])
    model.load_state_dict({k: torch.stack([a[k].double() for a in averaged]).mean(0).to(v.dtype)
                           if v.is_floating_point() else v for k, v in averaged[0].items()})
    if also:
        state["averaged_steps"] = sorted(steps)
    return model.eval(), state


def export_run(run: Path, name: str, folder: Path, also: tuple[Path, ...] = ()) -> dict:
    """Export a run's checkpoint (averaged with ``also``, ``load_checkpoint``) as
    ``folder/name.npz`` with its card ``folder/name.json``."""
    model, state = load_checkpoint(run, also)
    opt: TrainOptions = state["options"]
    fingerprint = weights.save(weights.export(model), folder / f"{name}.npz")
    train_paths, val_paths = split_folder(opt.data)
    last_val = [row["val_bpsp"] for row in csv.DictReader((run / "curve.csv").open()) if row["val_bpsp"]]
    card = {
        "name": name,
        "fingerprint": fingerprint,
        "architecture": {**dataclasses.asdict(opt.config),
                         "macs_per_pixel": opt.config.macs_per_pixel,
                         "parameters": sum(p.numel() for p in model.parameters())},
        "training": {"data": f"shared/data/{opt.data.name}", "images": [p.stem for p in train_paths],
                     "validation_images": [p.stem for p in val_paths], "steps": state["step"],
                     "batch": opt.batch, "crop": opt.crop, "chroma": opt.chroma, "pipelines": opt.pipelines,
                     "downscale": opt.downscale, "soften": opt.soften, "grain": opt.grain, "lr": opt.lr,
                     "half_life": opt.half_life, "seed": opt.seed, "ema": opt.ema,
                     "wall_seconds": round(state["seconds"]), "hardware": state.get("hardware", []),
                     "float_val_bpsp_crops": float(last_val[-1]) if last_val and not also else None,
                     "run": str(run)},
    }
    if also:
        card["training"]["averaged_steps"] = state["averaged_steps"]
    card_path = folder / f"{name}.json"
    if card_path.exists():  # keep measurements recorded by the benchmarks for this same model
        old = json.loads(card_path.read_text())
        if old.get("fingerprint") == fingerprint:
            card = {**old, **card}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card
