"""The encoder's choice of model per image: the soft-chroma specialist where colour was stored
at half resolution, the general model elsewhere; the file names what it chose."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pxcodec
from pxcodec import codec, images, neural, weights
from pxcodec.data import halve_chroma

from .conftest import IMAGES, decode, encode, round_trips


def halved(pixels: np.ndarray) -> np.ndarray:
    """The image with its chroma at half resolution (as ``pxc train --chroma`` makes crops)."""
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    return np.ascontiguousarray(halve_chroma(x)[0].permute(1, 2, 0).numpy())


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    """A Kodak crop shrunk 4× (Lanczos filter): colour as sharp as luma, as in the training
    photos (Kodak's own chroma was stored at half resolution). A box filter's softer shrink no
    longer is sharp enough: pxc-r, with its neighbour net, codes it in 0.3 % fewer sample bits
    than pxc-f (and rightly takes it)."""
    with Image.open(IMAGES / "kodim23-256.png") as im:
        return np.asarray(im.convert("RGB").resize((64, 64), Image.LANCZOS)).copy()


def test_the_choice_is_the_candidate_with_the_fewest_sample_bits(sharp):
    soft = halved(sharp)
    for image, expected in ((sharp, weights.DEFAULT_MODEL), (soft, weights.DEFAULT_MODELS[1])):
        bits = {name: neural.sample_bits(image, weights.by_name(name)) for name in weights.DEFAULT_MODELS}
        assert min(bits, key=bits.get) == expected
        assert neural.choose_model(image).name == expected


def test_a_halved_chroma_file_names_the_specialist_and_round_trips(sharp):
    soft = halved(sharp)
    chosen = neural.choose_model(soft)
    assert chosen.name == weights.DEFAULT_MODELS[1]
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
