"""The ``.pxc`` container: a checksummed little-endian header, then one coded stream per band.

The byte layout is specified in ``docs/FORMAT.md``; this module is its only reader and writer.
Parsing checks everything it can before any pixel is decoded (magic, version, header CRC,
plausible dimensions, stream lengths and CRCs), so a damaged file fails early with the
exception that names what is wrong.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorruptError, NotPxcError, TruncatedError, UnsupportedVersionError

MAGIC = b"\x89PXC\r\n\x1a\n"
#: The version this install writes, and those it reads (version 1 had no flags: dependent bands;
#: version 2 had no tile columns: each band one stream; version 3 had no colour-coefficient
#: offsets in its streams' adaptation prefix; version 4 did not learn log-scale offsets while
#: coding; version 5 had no head offsets in the prefix; version 6 did not split G's and B's
#: learning contexts by a flat or busy colour difference; version 7 had no feature gains in the
#: prefix; version 8 stored the prefix as bytes rather than range coding it; version 9's streams
#: learned from every fourth step of their wavefront only).
VERSION = 10
READS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
#: Header flag: each band is coded without the rows above it, so bands decode side by side.
INDEPENDENT_BANDS = 1
#: Pixel modes: code → name. RGB and L are model-coded; RGBA and LA add an alpha stream;
#: PNG is the lossless fallback (one stream holding a PNG file, no model).
MODES = {1: "RGB", 2: "L", 3: "RGBA", 4: "LA", 5: "PNG"}
MODE_CODES = {name: code for code, name in MODES.items()}
MODEL_CODED = {"RGB", "L", "RGBA", "LA"}
EXTRA_STREAMS = {"RGB": 0, "L": 0, "RGBA": 1, "LA": 1, "PNG": 1}
#: Largest width or height, and pixel count, a file may declare; more is refused unread.
MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 28

_FIXED = struct.Struct("<8sHHI32sIIBxHIIII")    # up to and including the metadata length
_STREAM = struct.Struct("<II")                   # length, CRC-32 of each stream
_CRC = struct.Struct("<I")


@dataclass
class Header:
    """Everything a decoder needs besides the streams themselves."""

    fingerprint: bytes
    width: int
    height: int
    mode: str
    stream_rows: int
    pixel_crc: int
    metadata: bytes = b""
    independent: bool = True
    stream_cols: int = 0  # columns per tile of a band; 0: one tile, the whole width
    version: int = VERSION
    stream_lengths: list[int] = field(default_factory=list)
    stream_crcs: list[int] = field(default_factory=list)

    @property
    def bands(self) -> int:
        """Model-coded bands of rows; zero for the PNG fallback."""
        return -(-self.height // self.stream_rows) if self.mode in MODEL_CODED else 0

    @property
    def tiles(self) -> int:
        """Model-coded streams: the tiles of every band (``schedule.stream_tiles``)."""
        return self.bands * (-(-self.width // self.stream_cols) if self.stream_cols else 1)

    @property
    def stream_count(self) -> int:
        """Tile streams, then the alpha plane or the fallback PNG where the mode has one."""
        return self.tiles + EXTRA_STREAMS[self.mode]

    def size(self) -> int:
        return _FIXED.size + len(self.metadata) + _STREAM.size * self.stream_count + _CRC.size


def pack(header: Header, streams: list[bytes]) -> bytes:
    """The bytes of a .pxc file."""
    if len(streams) != header.stream_count:
        raise ValueError(f"{len(streams)} streams where the header needs {header.stream_count}")
    flags = INDEPENDENT_BANDS if header.independent else 0
    if header.stream_cols and not header.independent:
        raise ValueError("tiles need independent bands")
    fixed = _FIXED.pack(MAGIC, VERSION, flags, header.size(), header.fingerprint, header.width,
                        header.height, MODE_CODES[header.mode], header.stream_cols, header.stream_rows,
                        header.stream_count, header.pixel_crc, len(header.metadata))
    table = b"".join(_STREAM.pack(len(s), zlib.crc32(s)) for s in streams)
    head = fixed + header.metadata + table
    return head + _CRC.pack(zlib.crc32(head)) + b"".join(streams)


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and verify a .pxc file; raises a ``PxcError`` subclass naming what is wrong."""
    data = bytes(data)
    if not data:
        raise NotPxcError("empty input: not a pxc file")
    if not data.startswith(MAGIC[:len(data)]) or (len(data) >= len(MAGIC) and not data.startswith(MAGIC)):
        raise NotPxcError("not a pxc file (wrong magic bytes)")
    if len(data) < len(MAGIC) + 2:
        raise TruncatedError(f"truncated pxc file: {len(data)} bytes")
    (version,) = struct.unpack_from("<H", data, len(MAGIC))
    if version not in READS:
        raise UnsupportedVersionError(f"pxc format version {version}; this install reads versions "
                                      f"{', '.join(map(str, READS))}")
    if len(data) < _FIXED.size:
        raise TruncatedError(f"truncated pxc file: {len(data)} bytes, header needs {_FIXED.size}")
    (_, _, flags, header_size, fingerprint, width, height, mode, stream_cols, stream_rows, count, pixel_crc,
     meta_len) = _FIXED.unpack_from(data)
    if header_size > len(data):
        raise TruncatedError(f"truncated pxc file: header needs {header_size} bytes, file has {len(data)}")
    if header_size < _FIXED.size + _CRC.size:
        raise CorruptError("corrupt pxc header: impossible header length")
    (stored_crc,) = _CRC.unpack_from(data, header_size - _CRC.size)
    if zlib.crc32(data[:header_size - _CRC.size]) != stored_crc:
        raise CorruptError("corrupt pxc header: checksum mismatch")
    if mode not in MODES:
        raise CorruptError(f"corrupt pxc header: unknown pixel mode {mode}")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and width * height <= MAX_PIXELS):
        raise CorruptError(f"corrupt pxc header: implausible size {width}×{height}")
    if flags & ~(INDEPENDENT_BANDS if version >= 2 else 0):
        raise CorruptError(f"corrupt pxc header: unknown flags {flags:#06x}")
    if stream_cols and (version < 3 or not flags & INDEPENDENT_BANDS):
        raise CorruptError("corrupt pxc header: tile columns in a file without independent tiles")
    header = Header(fingerprint, width, height, MODES[mode], stream_rows, pixel_crc,
                    independent=bool(flags & INDEPENDENT_BANDS), stream_cols=stream_cols, version=version)
    if stream_rows < 1 or count != header.stream_count:
        raise CorruptError("corrupt pxc header: stream layout does not match the image size")
    header.metadata = data[_FIXED.size:_FIXED.size + meta_len]
    if header.size() != header_size:
        raise CorruptError("corrupt pxc header: lengths disagree")
    table = _FIXED.size + meta_len
    for i in range(count):
        length, crc = _STREAM.unpack_from(data, table + i * _STREAM.size)
        header.stream_lengths.append(length)
        header.stream_crcs.append(crc)
    end = header_size + sum(header.stream_lengths)
    if end > len(data):
        raise TruncatedError(f"truncated pxc file: streams need {end} bytes, file has {len(data)}")
    if end < len(data):
        raise CorruptError(f"corrupt pxc file: {len(data) - end} unexpected bytes after the last stream")
    streams, pos = [], header_size
    for i, (length, crc) in enumerate(zip(header.stream_lengths, header.stream_crcs)):
        stream = data[pos:pos + length]
        if zlib.crc32(stream) != crc:
            raise CorruptError(f"corrupt pxc file: stream {i} checksum mismatch")
        streams.append(stream)
        pos += length
    return header, streams
