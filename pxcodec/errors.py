"""The exceptions pxcodec raises; every one is a ``PxcError``, so callers can catch them all."""


class PxcError(Exception):
    """Base class of every error pxcodec reports to its users."""


class NotPxcError(PxcError):
    """The data does not start with the pxc magic bytes."""


class TruncatedError(PxcError):
    """The file ends before the header or a stream it declares."""


class CorruptError(PxcError):
    """A checksum does not match: the header, a stream, or the decoded pixels."""


class UnsupportedVersionError(PxcError):
    """The file uses a format version this install cannot read."""


class UnknownModelError(PxcError):
    """The file was written by a model whose weights this install does not have."""


class CertificateError(PxcError):
    """A kernel cannot be proven exact for these weights (it could overflow or round)."""


class InputError(PxcError):
    """The input cannot be coded: an unreadable image, a mode this version does not support, or
    an encoder option out of range."""
