"""Contract C4: a damaged or foreign file fails with the documented error, before any output."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import pxcodec
from pxcodec import container, neural
from pxcodec.errors import (CorruptError, NotPxcError, TruncatedError, UnknownModelError,
                            UnsupportedVersionError)

from .conftest import IMAGES, load, reseal


@pytest.fixture(scope="module")
def good(kodak_crop) -> bytes:
    return pxcodec.compress(kodak_crop[:24, :32])


def test_header_fields_roundtrip(good, kodak_crop):
    header = pxcodec.info(good)
    assert (header.width, header.height, header.mode) == (32, 24, "RGB")
    assert header.fingerprint == pxcodec.neural.choose_model(kodak_crop[:24, :32]).fingerprint


@pytest.mark.parametrize("data", [b"", b"PNG\x89 not pxc at all", b"\x89PNG\r\n\x1a\n" + bytes(100)])
def test_not_a_pxc_file(data):
    with pytest.raises(NotPxcError):
        pxcodec.decompress(data)


def test_truncated_anywhere(good):
    for cut in [3, 9, 20, 60, len(good) // 2, len(good) - 1]:
        with pytest.raises(TruncatedError):
            pxcodec.decompress(good[:cut])


def test_unknown_version(good):
    data = bytearray(good)
    struct.pack_into("<H", data, 8, container.VERSION + 1)
    with pytest.raises(UnsupportedVersionError, match=f"version {container.VERSION + 1}"):
        pxcodec.decompress(bytes(data))


@pytest.mark.parametrize("version, flags", [(4, 2), (3, 0x8001), (2, 2), (1, 1)])
def test_unknown_flags_are_corrupt(good, version, flags):
    """Flags a version does not define are refused, not ignored (version 1 defined none)."""
    data = bytearray(good)
    struct.pack_into("<HH", data, 8, version, flags)
    with pytest.raises(CorruptError, match="flags"):
        pxcodec.decompress(reseal(data))


def test_version_1_files_still_decode():
    """A file written by format version 1 (bands read the rows above them) decodes exactly."""
    data = (IMAGES / "kodim04-40x30-v1.pxc").read_bytes()
    header = pxcodec.info(data)
    assert (header.version, header.independent, header.bands) == (1, False, 3)
    assert np.array_equal(pxcodec.decompress(data, as_array=True), load("kodim04-48x64.png")[:40, :30])


#: Each older fixture (a 40 × 30 crop written by that format version): its tile columns, its
#: streams, and what the version lacked against the next.
OLD_FILES = {
    2: (0, 3, "one stream per band of 16 rows, no tile columns"),
    3: (16, 6, "tiles of 16 × 16, adaptation prefix without colour coefficients"),
    4: (16, 6, "streams that do not learn"),
    5: (16, 6, "no head offsets in the prefixes"),
    6: (16, 6, "learning contexts not split by the colour difference"),
    7: (16, 6, "no feature gains in the prefixes"),
    8: (16, 6, "prefixes stored as bytes"),
    9: (16, 6, "written by pxc-w-266000; streams learning from every fourth step of their wavefront only"),
}


@pytest.mark.parametrize("version", OLD_FILES)
def test_older_versions_still_decode(version):
    """A file written by each format version from 2 on (independent bands, ``OLD_FILES``)
    decodes exactly."""
    cols, tiles, _ = OLD_FILES[version]
    data = (IMAGES / f"kodim04-40x30-v{version}.pxc").read_bytes()
    header = pxcodec.info(data)
    assert (header.version, header.independent, header.stream_cols, header.tiles) == (version, True, cols, tiles)
    assert np.array_equal(pxcodec.decompress(data, as_array=True), load("kodim04-48x64.png")[:40, :30])


def test_new_files_are_version_10_with_independent_tiles(good):
    header = pxcodec.info(good)
    assert (header.version, header.independent) == (container.VERSION, True) == (10, True)
    assert header.stream_cols == neural.STREAM_COLS


@pytest.mark.parametrize("version, flags, cols", [(3, 0, 16), (2, 1, 16)])
def test_tile_columns_need_version_3_and_independent_bands(good, version, flags, cols):
    """Tile columns in a version-2 file, or with dependent bands, are refused as corrupt."""
    data = bytearray(good)
    struct.pack_into("<HH", data, 8, version, flags)
    struct.pack_into("<H", data, 58, cols)
    with pytest.raises(CorruptError, match="tile"):
        pxcodec.decompress(reseal(data))


def test_flipped_header_byte(good):
    data = bytearray(good)
    data[30] ^= 0x10  # inside the fingerprint
    with pytest.raises(CorruptError, match="header"):
        pxcodec.decompress(bytes(data))


def test_flipped_stream_byte(good):
    data = bytearray(good)
    data[-5] ^= 0x01
    with pytest.raises(CorruptError, match="stream 0"):
        pxcodec.decompress(bytes(data))


def test_trailing_garbage(good):
    with pytest.raises(CorruptError, match="unexpected bytes"):
        pxcodec.decompress(good + b"\x00")


def test_unknown_model_names_both_fingerprints(good):
    data = bytearray(good)
    data[16:48] = bytes(range(32))
    with pytest.raises(UnknownModelError) as err:
        pxcodec.decompress(reseal(data))
    assert bytes(range(32)).hex()[:16] in str(err.value)
    assert pxcodec.weights.by_name().fingerprint.hex()[:16] in str(err.value)


def test_pixel_checksum_is_verified(good):
    data = bytearray(good)
    pos = container._FIXED.size - 8  # pixel CRC sits before the metadata length
    data[pos] ^= 0xFF
    with pytest.raises(CorruptError, match="pixels"):
        pxcodec.decompress(reseal(data))


def test_absurd_size_is_refused_before_decoding(good):
    data = bytearray(good)
    struct.pack_into("<II", data, 48, 1 << 21, 1 << 21)
    with pytest.raises(CorruptError, match="implausible size"):
        pxcodec.decompress(reseal(data))


def test_every_error_is_a_pxc_error():
    for exc in (NotPxcError, TruncatedError, CorruptError, UnsupportedVersionError, UnknownModelError):
        assert issubclass(exc, pxcodec.PxcError)


def test_pack_unpack_identity():
    header = container.Header(bytes(32), 5, 300, "RGB", 128, 1234, b"meta")
    streams = [b"abcd", b"", b"efghijkl"]
    parsed, out = container.unpack(container.pack(header, streams))
    assert out == streams
    assert (parsed.width, parsed.height, parsed.metadata, parsed.pixel_crc) == (5, 300, b"meta", 1234)
    assert np.array_equal(parsed.stream_lengths, [4, 0, 8])


@pytest.mark.parametrize("shipped", pxcodec.weights.available(), ids=lambda m: m.name)
def test_files_of_every_shipped_model_decode(shipped, kodak_crop):
    """A replaced model stays addressable by fingerprint, so its old files keep decoding."""
    data = pxcodec.compress(kodak_crop[:16, :20], model=shipped.name)
    assert pxcodec.info(data).fingerprint == shipped.fingerprint
    assert np.array_equal(np.asarray(pxcodec.decompress(data)), kodak_crop[:16, :20])
