"""Write copies of photos with their chroma at half resolution, a test set for how a model
copes with camera, JPEG and video pipelines' colour: by default through the pipeline training
crops go through (``pxcodec.data.halve_chroma``, 4:2:0, bilinear), with ``--pipeline pillow``
through one no training crop goes through (Pillow's YCbCr, its antialiased bicubic halving and
bicubic interpolation back), with ``--pipeline softened`` shrunk by ``--factor`` instead
(``pxcodec.data.soften_chroma``: softer colour than 4:2:0 alone leaves), and with ``--grain
LUMA COLOUR`` noise added after it (``pxcodec.data.add_grain``, those standard deviations, the
same noise every time):

    python benchmarks/halved_chroma.py OUT [IMAGES…] [--pipeline pillow|softened [--factor 3]]
                                       [--grain 0.75 0.5]
    (default: held-out photos 036–040)
    python benchmarks/kodak.py --images OUT --set validation-halved-chroma --model NAME
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec.data import SHARED_DATA, VALIDATION_NAMES, add_grain, halve_chroma, load_rgb, soften_chroma  # noqa: E402


def pillow_halved(image: torch.Tensor) -> torch.Tensor:
    """A uint8 (1, 3, H, W) image through Pillow's YCbCr with the chroma planes resized to half
    (rounded up) and back, both bicubic."""
    y, cb, cr = to_pil(image).convert("YCbCr").split()
    w, h = y.size
    cb, cr = (c.resize((-(-w // 2), -(-h // 2)), Image.BICUBIC).resize((w, h), Image.BICUBIC) for c in (cb, cr))
    rgb = np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]


def to_pil(image: torch.Tensor) -> Image.Image:
    """A uint8 (1, 3, H, W) image as a Pillow RGB image."""
    return Image.fromarray(np.ascontiguousarray(image[0].permute(1, 2, 0).numpy()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder for the PNG copies (created; files are not overwritten)")
    ap.add_argument("images", type=Path, nargs="*",
                    default=[SHARED_DATA / "train" / f"{name}.png" for name in VALIDATION_NAMES])
    ap.add_argument("--pipeline", choices=("training", "pillow", "softened"), default="training",
                    help="training: pxcodec.data.halve_chroma; pillow: one no training crop goes through; "
                         "softened: pxcodec.data.soften_chroma by --factor")
    ap.add_argument("--factor", type=float, default=3.0, help="how far --pipeline softened shrinks the chroma")
    ap.add_argument("--grain", type=float, nargs=2, metavar=("LUMA", "COLOUR"),
                    help="then add noise of these standard deviations, shared by the channels and each one's own")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        target = args.out / f"{path.stem}.png"
        if target.exists():
            sys.exit(f"{target} exists; not overwritten")
        image = load_rgb(path)[None]
        if args.pipeline == "pillow":
            image = pillow_halved(image)
        elif args.pipeline == "softened":
            image = soften_chroma(image, args.factor)
        else:
            image = halve_chroma(image)
        if args.grain:
            luma, colour = torch.tensor([args.grain[0]]), torch.full((1, 3), args.grain[1])
            image = add_grain(image, luma, colour, torch.Generator().manual_seed(0))
        to_pil(image).save(target)
        print(target)


if __name__ == "__main__":
    main()
