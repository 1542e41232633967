"""Write copies of photos with their chroma at half resolution (``pxcodec.data.halve_chroma``),
a test set for how a model trained on full-resolution chroma copes with camera, JPEG and video
pipelines' colour:

    python benchmarks/halved_chroma.py OUT [IMAGES…]   (default: held-out photos 036–040)
    python benchmarks/kodak.py --images OUT --set validation-halved-chroma --model NAME
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pxcodec.data import SHARED_DATA, VALIDATION_NAMES, halve_chroma, load_rgb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder for the PNG copies (created; files are not overwritten)")
    ap.add_argument("images", type=Path, nargs="*",
                    default=[SHARED_DATA / "train" / f"{name}.png" for name in VALIDATION_NAMES])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        target = args.out / f"{path.stem}.png"
        if target.exists():
            sys.exit(f"{target} exists; not overwritten")
        rgb = halve_chroma(load_rgb(path)[None])[0].permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(rgb)).save(target)
        print(target)


if __name__ == "__main__":
    main()
