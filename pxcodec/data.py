"""Training data: photographs loaded once into memory, sampled as random crops."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

#: Where the project's shared photographs live, next to a checkout.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Training photos held out for validation (DESIGN: never train or tune on Kodak).
VALIDATION_NAMES = ("036", "037", "038", "039", "040")


def load_rgb(path: Path) -> Tensor:
    """An image file as a uint8 (3, H, W) tensor."""
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


def split_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """(train, validation) PNG paths of a folder, validation by ``VALIDATION_NAMES``."""
    paths = sorted(folder.glob("*.png"))
    val = [p for p in paths if p.stem in VALIDATION_NAMES]
    return [p for p in paths if p.stem not in VALIDATION_NAMES], val


#: JPEG's RGB → YCbCr matrix (ITU-R BT.601, full range; chroma centred on 0 here).
_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_RGB = torch.linalg.inv(_YCBCR)


def halve_chroma(images: Tensor, rows: int = 2, upsample: str = "bilinear") -> Tensor:
    """uint8 images (n, 3, H, W) as a camera, JPEG or video pipeline would give them back: YCbCr
    rounded to 8 bits, chroma averaged over blocks of ``rows`` × 2 pixels (4:2:0, or 4:2:2 with
    ``rows`` 1) and interpolated back (``upsample``: bilinear, bicubic or nearest, as
    ``F.interpolate`` names them), then RGB rounded.

    The training photos were downsampled from large originals, so their chroma is as sharp as
    their luma; most photographs people store went through such a pipeline and have much smoother
    chroma, which a model that never saw it pays for in bits.
    """
    corners = {} if upsample == "nearest" else {"align_corners": False}
    return _through_chroma(images, lambda chroma: F.interpolate(
        F.avg_pool2d(chroma, (rows, 2), ceil_mode=True), size=chroma.shape[2:], mode=upsample, **corners))


def soften_chroma(images: Tensor, factor: float) -> Tensor:
    """uint8 images (n, 3, H, W) with their chroma resized to 1/``factor`` of the size (an
    antialiased, area-like filter) and interpolated back bilinearly: colour softer than 4:2:0
    alone leaves it, as film, a camera's demosaicing or a resized copy may (``factor`` 2 is
    about ``halve_chroma``'s; larger, softer)."""
    def resized(chroma: Tensor) -> Tensor:
        h, w = chroma.shape[2:]
        small = F.interpolate(chroma, size=(max(1, round(h / factor)), max(1, round(w / factor))),
                              mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return _through_chroma(images, resized)


def _through_chroma(images: Tensor, change: Callable[[Tensor], Tensor]) -> Tensor:
    """uint8 images (n, 3, H, W) through YCbCr rounded to 8 bits, ``change`` applied to the
    chroma planes (n, 2, H, W) and rounded, then RGB rounded: a pipeline that stores colour
    at a lower resolution than luma."""
    ycc = to_ycbcr(images.float()).round()
    ycc[:, 1:] = change(ycc[:, 1:]).round()
    rgb = torch.einsum("ij,njhw->nihw", _RGB, ycc)
    return rgb.round().clamp(0, 255).to(torch.uint8)


def add_grain(images: Tensor, luma: Tensor, colour: Tensor, gen: torch.Generator) -> Tensor:
    """uint8 images (n, 3, H, W) with Gaussian noise added and rounded: per image, a part of
    standard deviation ``luma[i]`` shared by the three channels and a part of ``colour[i, c]``
    each channel's own (in 8-bit steps). Film grain and sensor noise that survive a pipeline's
    colour step; the training photos, downsampled from large originals, have little of either."""
    n, _, h, w = images.shape
    shared = torch.randn((n, 1, h, w), generator=gen) * luma.view(n, 1, 1, 1)
    own = torch.randn((n, 3, h, w), generator=gen) * colour.view(n, 3, 1, 1)
    return (images.float() + shared + own).round().clamp(0, 255).to(torch.uint8)


def to_ycbcr(rgb: Tensor) -> Tensor:
    """Float RGB images (n, 3, H, W) in JPEG's YCbCr, chroma centred on 0."""
    return torch.einsum("ij,njhw->nihw", _YCBCR, rgb)


#: The pipelines a training crop's chroma may go through (``halve_chroma``'s rows and upsample)
#: with their odds: ``bilinear`` only the one, ``mixed`` also bicubic or nearest interpolation
#: and 4:2:2, so that a model learns smooth colour and not one pipeline's exact arithmetic.
CHROMA_PIPELINES = {
    "bilinear": (((2, "bilinear"), 1.0),),
    "mixed": (((2, "bilinear"), 0.4), ((2, "bicubic"), 0.2), ((2, "nearest"), 0.2), ((1, "bilinear"), 0.2)),
}

#: Smallest factor a downscaled crop is shrunk by (``CropSampler``'s ``downscale``).
MIN_SCALE = 0.5
#: Largest factor a softened crop's chroma is shrunk by (``CropSampler``'s ``soften``); the
#: smallest is 2, about what halving does.
MAX_SOFTEN = 4.0
#: Largest standard deviations of a grainy crop's noise (``CropSampler``'s ``grain``; each drawn
#: uniformly from 0): the part shared by the channels and each channel's own.
MAX_GRAIN_LUMA, MAX_GRAIN_COLOUR = 1.5, 1.0


def downscaled(region: Tensor, size: int) -> Tensor:
    """A uint8 (3, h, w) region resized to (3, size, size) with an antialiasing filter, rounded."""
    out = F.interpolate(region[None].float(), size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8)


class CropSampler:
    """Random crops (with horizontal flips) from in-memory images, weighted by image area; a
    fraction ``downscale`` of them cut from a region up to 1/``MIN_SCALE`` times larger and
    shrunk to the crop size (new pixel grids from the same few photos, as a smaller camera or a
    resized copy would give them), and a fraction ``chroma`` with their chroma at half
    resolution (``halve_chroma``), through one of the ``pipelines`` (``CHROMA_PIPELINES``), a
    fraction ``soften`` of those instead shrunk by a random factor of 2 to ``MAX_SOFTEN``
    (``soften_chroma``); and last, a fraction ``grain`` of all crops with noise of random
    strength added (``add_grain``)."""

    def __init__(self, paths: list[Path], crop: int, chroma: float = 0.0, downscale: float = 0.0,
                 pipelines: str = "bilinear", soften: float = 0.0, grain: float = 0.0):
        if not paths:
            raise ValueError("no training images")
        for name, value in (("chroma", chroma), ("downscale", downscale), ("soften", soften),
                            ("grain", grain)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], not {value}")
        if pipelines not in CHROMA_PIPELINES:
            raise ValueError(f"unknown chroma pipelines {pipelines!r}: one of {', '.join(CHROMA_PIPELINES)}")
        self.images = [load_rgb(p) for p in paths]
        self.crop, self.chroma, self.downscale, self.soften, self.grain = crop, chroma, downscale, soften, grain
        self.pipelines, odds = zip(*CHROMA_PIPELINES[pipelines])
        self.odds = torch.tensor(odds, dtype=torch.float64)
        areas = torch.tensor([im.shape[1] * im.shape[2] for im in self.images], dtype=torch.float64)
        self.weights = areas / areas.sum()

    def batch(self, n: int, gen: torch.Generator) -> Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        out = torch.empty((n, 3, self.crop, self.crop), dtype=torch.uint8)
        for j, i in enumerate(idx.tolist()):
            im = self.images[i]
            side = self.crop
            if self.downscale and torch.rand((), generator=gen) < self.downscale:  # no draws otherwise
                factor = 1.0 - (1.0 - MIN_SCALE) * float(torch.rand((), generator=gen))
                side = min(round(self.crop / factor), *im.shape[1:])
            y = int(torch.randint(im.shape[1] - side + 1, (1,), generator=gen))
            x = int(torch.randint(im.shape[2] - side + 1, (1,), generator=gen))
            c = im[:, y:y + side, x:x + side]
            if side != self.crop:
                c = downscaled(c, self.crop)
            out[j] = c.flip(-1) if torch.rand((), generator=gen) < 0.5 else c
        if self.chroma:  # no draws otherwise: runs without it keep their random sequence
            halve = torch.rand(n, generator=gen) < self.chroma
            # one pipeline: no draws for it, so runs from before the choice keep their sequence
            way = torch.multinomial(self.odds, n, replacement=True, generator=gen) if len(self.pipelines) > 1 \
                else torch.zeros(n, dtype=torch.int64)
            if self.soften:  # no draws otherwise, as above
                soft = halve & (torch.rand(n, generator=gen) < self.soften)
                factors = 2.0 + (MAX_SOFTEN - 2.0) * torch.rand(n, generator=gen, dtype=torch.float64)
                for j in soft.nonzero().flatten().tolist():
                    out[j] = soften_chroma(out[j:j + 1], float(factors[j]))[0]
                halve &= ~soft
            for i, (rows, upsample) in enumerate(self.pipelines):
                chosen = halve & (way == i)
                if chosen.any():
                    out[chosen] = halve_chroma(out[chosen], rows, upsample)
        if self.grain:  # no draws otherwise, as above
            grainy = (torch.rand(n, generator=gen) < self.grain).nonzero().flatten()
            if len(grainy):
                luma = MAX_GRAIN_LUMA * torch.rand(len(grainy), generator=gen)
                colour = MAX_GRAIN_COLOUR * torch.rand((len(grainy), 3), generator=gen)
                out[grainy] = add_grain(out[grainy], luma, colour, gen)
        return out


def fixed_crops(paths: list[Path], crop: int, per_image: int) -> Tensor:
    """Deterministic crops along each image's diagonal, for a repeatable validation loss."""
    crops = []
    for p in paths:
        im = load_rgb(p)
        h, w = im.shape[1:]
        for j in range(per_image):
            y = (h - crop) * (j + 1) // (per_image + 1)
            x = (w - crop) * (j + 1) // (per_image + 1)
            crops.append(im[:, y:y + crop, x:x + crop])
    return torch.stack(crops)
