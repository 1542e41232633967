"""PNG metadata that survives a round trip: what is kept, how it is stored, how it is written back.

Kept: ICC profile, gamma (gAMA), chromaticities (cHRM), sRGB intent, physical pixel size (DPI),
text chunks (tEXt/zTXt/iTXt, as text), a colour-key transparency (tRNS) of L/RGB images, and
EXIF. Stored in the .pxc header as UTF-8 JSON (bytes as base64), so the header stays
self-describing. Anything else (e.g. private chunks, timestamps) is not kept.
"""
from __future__ import annotations

import base64
import json
import struct

from PIL import Image, PngImagePlugin

from .errors import CorruptError

KEPT = ("icc_profile", "gamma", "chromaticity", "srgb", "dpi", "transparency", "exif")


def extract(image: Image.Image) -> dict:
    """The kept metadata of an opened image (``text`` holds its text chunks)."""
    meta = {k: image.info[k] for k in KEPT if k in image.info and image.info[k] is not None}
    if image.mode == "P":  # a palette's transparency travels inside the fallback PNG
        meta.pop("transparency", None)
    text = getattr(image, "text", None) or {}
    if text:
        meta["text"] = {str(k): str(v) for k, v in text.items()}
    return meta


def _encode(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def pack(meta: dict) -> bytes:
    return json.dumps(_encode(meta), sort_keys=True, separators=(",", ":")).encode() if meta else b""


def unpack(data: bytes) -> dict:
    if not data:
        return {}
    try:
        meta = _decode(json.loads(data.decode()))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptError(f"corrupt pxc header: unreadable metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise CorruptError("corrupt pxc header: metadata is not a mapping")
    return meta


def apply(image: Image.Image, meta: dict) -> Image.Image:
    """Attach metadata to a decoded image the way Pillow's PNG reader would have."""
    for key in KEPT:
        if key in meta:
            image.info[key] = meta[key]
    if "text" in meta:
        image.info.update(meta["text"])
    return image


def png_save_options(meta: dict) -> dict:
    """Keyword arguments for ``Image.save(..., format="PNG")`` that write the metadata back."""
    info = PngImagePlugin.PngInfo()
    for key, value in meta.get("text", {}).items():
        info.add_itxt(key, value) if not value.isascii() else info.add_text(key, value)
    if "gamma" in meta:
        info.add(b"gAMA", struct.pack(">I", round(meta["gamma"] * 100000)))
    if "chromaticity" in meta:
        info.add(b"cHRM", struct.pack(">8I", *(round(v * 100000) for v in meta["chromaticity"])))
    if "srgb" in meta:
        info.add(b"sRGB", bytes([meta["srgb"]]))
    opts: dict = {"pnginfo": info}
    for key in ("icc_profile", "dpi", "transparency", "exif"):
        if key in meta:
            opts[key] = meta[key]
    return opts
