"""The encoder's choice of model per image: a soft-chroma specialist where colour was stored
at half resolution (pxc-w or pxc-x where it came back bilinearly, as they trained, pxc-x where it
is softer still, pxc-u where it came back otherwise, pxc-y where grain came after it), the
general model elsewhere; the file names what it chose. (On these small crops of Kodak photos,
whose colour was soft to begin with, pxc-x codes the bilinearly halved ones in fewer bits than
pxc-w too.)"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

import pxcodec
from pxcodec import codec, images, neural, weights
from pxcodec.data import add_grain, halve_chroma, soften_chroma

from .conftest import IMAGES, decode, encode, round_trips


def through(pixels: np.ndarray, change: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """(H, W, 3) pixels through one of ``pxcodec.data``'s functions of (1, 3, H, W) images."""
    out = change(torch.from_numpy(pixels).permute(2, 0, 1)[None])
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def halved(pixels: np.ndarray, upsample: str = "bilinear") -> np.ndarray:
    """The image with its chroma at half resolution (as ``pxc train --chroma`` makes crops),
    interpolated back by ``upsample``."""
    return through(pixels, lambda x: halve_chroma(x, upsample=upsample))


def softened(pixels: np.ndarray, factor: float = 4.0) -> np.ndarray:
    """The image with its chroma shrunk by ``factor`` and interpolated back (``soften_chroma``)."""
    return through(pixels, lambda x: soften_chroma(x, factor))


def grainy(pixels: np.ndarray) -> np.ndarray:
    """The image with noise added as ``benchmarks/halved_chroma.py --grain 0.75 0.5`` adds it."""
    return through(pixels, lambda x: add_grain(x, torch.tensor([0.75]), torch.full((1, 3), 0.5),
                                               torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    """A Kodak crop shrunk 4× (Lanczos filter): sharper colour than Kodak's own, whose chroma
    was stored at half resolution."""
    with Image.open(IMAGES / "kodim23-256.png") as im:
        return np.asarray(im.convert("RGB").resize((64, 64), Image.LANCZOS)).copy()


@pytest.fixture(scope="module")
def unrelated() -> np.ndarray:
    """Colour as sharp as luma and independent of it, as in no pipeline's output: each channel
    from another part of a Kodak photo. (The shrunk crop is no longer sharp enough: pxc-u, which
    trained on 4:2:2 too, codes it in 0.35 % fewer sample bits than pxc-f.)"""
    with Image.open(IMAGES / "kodim23-256.png") as im:
        full = np.asarray(im.convert("RGB"))
    return np.stack([full[:64, :64, 0], full[100:164, 50:114, 1], full[180:244, 180:244, 2]], -1).copy()


def test_the_choice_is_the_candidate_with_the_fewest_sample_bits(sharp, unrelated):
    general, _, mixed, softer, grainier = weights.DEFAULT_MODELS
    for image, expected in ((unrelated, general), (halved(sharp), softer), (halved(sharp, "nearest"), mixed),
                            (softened(sharp), softer), (grainy(softened(sharp)), grainier)):
        bits = {name: neural.sample_bits(image, weights.by_name(name)) for name in weights.DEFAULT_MODELS}
        assert min(bits, key=bits.get) == expected
        if expected in (general, grainier):  # the choice itself, in its worker processes, at both ends
            assert neural.choose_model(image).name == expected


def test_a_halved_chroma_file_names_the_specialist_and_round_trips(sharp):
    soft = halved(sharp)
    chosen = neural.choose_model(soft)
    assert chosen.name in weights.DEFAULT_MODELS[1:]
    enc = encode(soft)
    assert enc.model == chosen
    assert pxcodec.info(enc.data).fingerprint == chosen.fingerprint
    assert np.array_equal(decode(enc.data), soft)


def test_a_named_model_is_used_whatever_the_choice_would_be(sharp):
    soft = halved(sharp)
    general = weights.by_name(weights.DEFAULT_MODEL)
    assert neural.choose_model(soft) != general
    data = pxcodec.compress(soft, model=general.name)
    assert pxcodec.info(data).fingerprint == general.fingerprint
    assert np.array_equal(pxcodec.decompress(data, as_array=True), soft)


def test_grey_images_are_chosen_for_and_round_trip(sharp):
    grey = np.ascontiguousarray(sharp[:24, :40, 1])
    assert neural.choose_model(grey).name in weights.DEFAULT_MODELS
    assert round_trips(grey)


def test_a_single_candidate_is_the_choice():
    tiny = np.zeros((2, 2, 3), dtype=np.uint8)
    assert neural.choose_model(tiny, ("pxc-a-3600",)) == weights.by_name("pxc-a-3600")


def test_a_file_kept_as_png_names_no_model(sharp):
    palette = images.from_image(Image.fromarray(sharp).convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    enc = codec.encode(palette, weights.by_name(weights.DEFAULT_MODEL))
    assert palette.mode == "PNG" and enc.model is None
