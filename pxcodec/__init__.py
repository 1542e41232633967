"""pxcodec: lossless image compression with an exact integer PixelCNN and a range coder."""

__version__ = "0.1.0"

from . import pillow_plugin  # noqa: F401  (registers the PXC format with Pillow)
from .api import compress, decompress, decompress_png, info
from .errors import (CertificateError, CorruptError, InputError, NotPxcError, PxcError,
                     TruncatedError, UnknownModelError, UnsupportedVersionError)

__all__ = ["compress", "decompress", "decompress_png", "info", "PxcError", "NotPxcError", "TruncatedError",
           "CorruptError", "UnsupportedVersionError", "UnknownModelError", "CertificateError",
           "InputError"]
