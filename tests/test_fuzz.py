"""Fuzzing the container parser: any bytes give a picture or a ``PxcError``, nothing else."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pxcodec
from pxcodec import codec, container

GOOD = pxcodec.compress(np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3))
GOOD_RGBA = pxcodec.compress(np.dstack([np.zeros((3, 4, 3), np.uint8), np.arange(12, dtype=np.uint8).reshape(3, 4)]))


def decode_or_pxc_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except pxcodec.PxcError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data):
    decode_or_pxc_error(data)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([GOOD, GOOD_RGBA]), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                                    min_size=1, max_size=4))
def test_mutated_files(data, flips):
    damaged = bytearray(data)
    for pos, mask in flips:
        damaged[pos % len(damaged)] ^= mask
    assume(bytes(damaged) != data)  # two flips of one byte can cancel out
    with pytest.raises(pxcodec.PxcError):
        codec.decode(bytes(damaged))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([GOOD, GOOD_RGBA]), st.integers(0, 400), st.binary(max_size=40))
def test_spliced_files(data, cut, tail):
    decode_or_pxc_error(data[:cut % len(data)] + tail)


def test_every_single_byte_flip_is_caught():
    """Each byte of a small file, flipped, is detected (header, stream or pixel checksum)."""
    for i in range(len(GOOD)):
        damaged = bytearray(GOOD)
        damaged[i] ^= 0xFF
        with pytest.raises(pxcodec.PxcError):
            codec.decode(bytes(damaged))
    container.unpack(GOOD)
