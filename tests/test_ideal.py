"""Contract C6: the file costs what the integer model says it should."""
from __future__ import annotations

from pxcodec import container

from .conftest import encode, load


def test_file_is_within_one_percent_of_ideal_code_length(model):
    pixels = load("kodim23-256.png")
    enc = encode(pixels, model)
    header, _ = container.unpack(enc.data)
    payload = len(enc.data) - header.size()
    assert enc.ideal_bits / 8 <= payload * 1.0001
    assert len(enc.data) <= (enc.ideal_bits / 8 + header.size()) * 1.01
