"""Entropy coding of 256-way integer PMFs with constriction's range coder.

The range coder is a queue, so a stream is decoded in the order it was encoded, which keeps
band-by-band streaming simple. ``perfect=False`` is passed explicitly (its default differs
between constriction versions); constriction re-quantises the integer masses deterministically
and gives every symbol non-zero probability. Words are stored little-endian on every machine.
"""
from __future__ import annotations

import constriction
import numpy as np

from .errors import CorruptError

_FAMILY = constriction.stream.model.Categorical(perfect=False)


class StreamEncoder:
    """One stream: encode batches of symbols with their PMFs, then ``finish`` to bytes."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, pmf: np.ndarray) -> None:
        """Append symbols (n,) with their integer masses (n, 256), in order (integer arrays, or
        float64 arrays of integers, which the coder takes without a copy)."""
        self._coder.encode(np.asarray(symbols, dtype=np.int32), _FAMILY, np.asarray(pmf, dtype=np.float64))

    def finish(self) -> bytes:
        return self._coder.get_compressed().astype("<u4").tobytes()


class StreamDecoder:
    """Decodes what one ``StreamEncoder`` wrote, batch by batch, with the same PMFs."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise CorruptError("stream length is not a whole number of 32-bit words")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._coder = constriction.stream.queue.RangeDecoder(words)

    def decode(self, pmf: np.ndarray) -> np.ndarray:
        """The next n symbols, given their integer masses (n, 256)."""
        try:
            return np.asarray(self._coder.decode(_FAMILY, np.asarray(pmf, dtype=np.float64)), dtype=np.int64)
        except (ValueError, RuntimeError, AssertionError) as exc:  # constriction's ways to report a bad stream
            raise CorruptError(f"stream does not decode: {exc}") from exc
