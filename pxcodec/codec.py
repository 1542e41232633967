"""Pictures ↔ .pxc bytes: the model for colour and grey, planes for alpha, the PNG fallback,
the metadata, and the checksum of everything decoded (DESIGN C4, C5)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from . import container, metadata, neural, planes, weights
from .adapt import DEFAULT_EFFORT, effort_settings
from .errors import CorruptError
from .images import Picture
from .neural import BATCH_ROWS, STREAM_COLS, STREAM_ROWS, Progress

#: Subpixels per pixel of each mode (None: the fallback PNG's depth is not in the header).
CHANNELS = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2, "PNG": None}


@dataclass
class Encoded:
    """A .pxc file, the model's ideal code length of its model-coded pixels, in bits, and the
    model that coded them (None where none did)."""

    data: bytes
    ideal_bits: float
    model: weights.ModelFile | None


def content_crc(picture: Picture) -> int:
    """CRC-32 of what a decoder must restore: pixels, then alpha, then the fallback PNG."""
    crc = 0
    for part in (picture.pixels, picture.alpha):
        if part is not None:
            crc = zlib.crc32(part.tobytes(), crc)
    return zlib.crc32(picture.png, crc) if picture.png is not None else crc


def encode(picture: Picture, model: weights.ModelFile | None = None, *, device: str = "cpu",
           kernel: str = "auto", batch_rows: int = BATCH_ROWS, stream_rows: int = STREAM_ROWS,
           stream_cols: int = STREAM_COLS, independent: bool = True, effort: int = DEFAULT_EFFORT,
           progress: Progress | None = None) -> Encoded:
    """The .pxc bytes of a picture (tiles, ``independent`` and ``effort``: see
    ``neural.encode_pixels``; dependent bands are never cut into tiles), coded with ``model``
    or, where none is given, the one ``neural.choose_model`` picks for the picture."""
    effort_settings(effort)  # checked for every mode, model-coded or not
    stream_cols = neural.tile_columns(stream_cols, independent)
    streams: list[bytes] = []
    ideal, fingerprint, coded_by = 0.0, bytes(32), None
    if picture.mode in container.MODEL_CODED:
        coded_by = model or neural.choose_model(picture.pixels, device=device, kernel=kernel)
        streams, ideal = neural.encode_pixels(picture.pixels, coded_by, device=device, kernel=kernel,
                                              batch_rows=batch_rows, stream_rows=stream_rows,
                                              stream_cols=stream_cols, independent=independent,
                                              effort=effort, progress=progress)
        fingerprint = coded_by.fingerprint
    if picture.alpha is not None:
        streams.append(planes.pack_alpha(picture.alpha))
    if picture.png is not None:
        streams.append(picture.png)
    header = container.Header(fingerprint, picture.width, picture.height, picture.mode, stream_rows,
                              content_crc(picture), metadata.pack(picture.meta), independent, stream_cols)
    return Encoded(container.pack(header, streams), ideal, coded_by)


def decode(data: bytes, *, device: str = "cpu", kernel: str = "auto",
           progress: Progress | None = None) -> Picture:
    """The picture in .pxc bytes, verified against the file's checksums."""
    header, streams = container.unpack(data)
    h, w, mode = header.height, header.width, header.mode
    picture = Picture(mode, w, h, meta=metadata.unpack(header.metadata))
    if mode in container.MODEL_CODED:
        channels = 3 if mode in ("RGB", "RGBA") else 1
        picture.pixels = neural.decode_pixels(streams[:header.tiles], header.fingerprint, h, w, channels,
                                              header.stream_rows, header.independent,
                                              version=header.version, stream_cols=header.stream_cols,
                                              device=device, kernel=kernel, progress=progress)
    if mode in ("RGBA", "LA"):
        picture.alpha = planes.unpack_alpha(streams[-1], h, w)
    if mode == "PNG":
        picture.png = streams[-1]
    if content_crc(picture) != header.pixel_crc:
        raise CorruptError("decoded pixels do not match the file's checksum")
    return picture


def bits_per_subpixel(nbytes: int, width: int, height: int, channels: int = 3) -> float:
    return 8 * nbytes / (channels * width * height)
