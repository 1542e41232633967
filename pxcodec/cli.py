"""The ``pxc`` command line."""
from __future__ import annotations

from pathlib import Path

import click
import torch

from .config import ModelConfig
from .data import SHARED_DATA


@click.group()
@click.version_option(package_name="pxcodec")
def main() -> None:
    """pxc: lossless image compression with an exact integer PixelCNN."""


@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SHARED_DATA / "train", show_default=True, help="Folder of training PNGs.")
@click.option("--steps", default=100_000, show_default=True, help="Train until this step.")
@click.option("--minutes", type=float, default=None, help="Stop after this much wall time.")
@click.option("--channels", default=64, show_default=True)
@click.option("--blocks", default=4, show_default=True)
@click.option("--components", default=5, show_default=True)
@click.option("--batch", default=8, show_default=True)
@click.option("--crop", default=64, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--half-life", default=10_000, show_default=True, help="LR halves every N steps.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True, help="CPU threads for torch.")
@click.option("--device", default="cpu", show_default=True)
def train(run: Path, data: Path, steps: int, minutes: float | None, channels: int, blocks: int,
          components: int, batch: int, crop: int, lr: float, half_life: int, seed: int,
          threads: int, device: str) -> None:
    """Train (or resume) the model in folder RUN; architecture options apply to a new run only."""
    from .train import TrainOptions
    from .train import train as run_training

    torch.set_num_threads(threads)
    cfg = ModelConfig(channels=channels, blocks=blocks, components=components)
    opt = TrainOptions(data=data, config=cfg, steps=steps, batch=batch, crop=crop, lr=lr,
                       half_life=half_life, seed=seed, device=device)
    run_training(run, opt, minutes=minutes, log=click.echo)
