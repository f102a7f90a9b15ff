"""Image decoding: the only code in faceindex that turns image bytes into pixels."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceindex.errors import DecodeError, ImageTooLarge

__all__ = ["SNIFF_BYTES", "Decoded", "decode_image", "decode_reduced", "encode_jpeg", "sniff_image"]

SNIFF_BYTES = 16  # what Pillow itself reads to pick a format

# libjpeg decodes at 1/2, 1/4 or 1/8 of the size by scaling its inverse DCT: the discarded
# pixels are never computed: a 12-14 MP photo decodes at 1/2 in 40-50% of the CPU time.
JPEG_SCALES = (8, 4, 2)
DRAFT_FORMATS = ("JPEG", "MPO")  # MPO: a camera's JPEG with more pictures after the first


@dataclass(frozen=True)
class Decoded:
    """An image's upright pixels, decoded at full size or reduced, and its own upright size:
    ``width`` x ``height`` is what a viewer of the file sees, whatever ``rgb`` holds."""

    rgb: np.ndarray
    width: int
    height: int


def sniff_image(head: bytes) -> str | None:
    """The image format the first bytes of a file announce (Pillow's own format checks, the
    ones :func:`decode_image` relies on), or None when no format claims them. Reads no
    pixels: a listing can ask this of every file whose name is not an image's."""
    if not head:
        return None
    Image.init()
    prefix = head[:SNIFF_BYTES]
    for fmt, (_factory, accept) in Image.OPEN.items():
        try:
            claimed = accept is not None and accept(prefix)
        except Exception:  # some checks unpack a fixed header and fail on a short file
            claimed = False
        if claimed:
            return str(fmt)
    return None


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> np.ndarray:
    """Decode any supported image to an RGB ``uint8`` array of shape (H, W, 3).

    EXIF orientation is applied; greyscale, 16-bit, palette and alpha images are converted;
    animated images give their first frame. The format is sniffed from the bytes, so a file's
    extension does not matter. Raises :class:`DecodeError` or :class:`ImageTooLarge`.
    """
    return _decode(data, max_pixels=max_pixels, max_bytes=max_bytes, min_side=0).rgb


def decode_reduced(data: bytes, *, max_pixels: int, max_bytes: int, min_side: int) -> Decoded:
    """As :func:`decode_image`, but a JPEG at least twice ``min_side`` on its longest side is
    decoded by libjpeg at 1/2, 1/4 or 1/8 of its size: the smallest of those that keeps the
    longest side at least ``min_side`` (0: never reduced). Other images decode at full size.
    The limits apply to the image's own size, and :class:`Decoded` reports that size.
    """
    return _decode(data, max_pixels=max_pixels, max_bytes=max_bytes, min_side=min_side)


def _decode(data: bytes, *, max_pixels: int, max_bytes: int, min_side: int) -> Decoded:
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"file is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        with warnings.catch_warnings():
            # We apply our own, stricter pixel limit below, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"{width}x{height} = {width * height} pixels, over the {max_pixels} limit"
                )
            if min_side > 0 and img.format in DRAFT_FORMATS:
                _draft(img, min_side)
            # A multi-frame image opens on its first frame; asking for n_frames would walk
            # every frame (a GIF of 100,000 frames is a few MB).
            img.load()
            upright: Image.Image = ImageOps.exif_transpose(img) or img
            turned = upright.size != img.size  # a quarter turn swapped the sides
            rgb = _to_rgb(upright)
            return Decoded(rgb, height if turned else width, width if turned else height)
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not an image in a supported format") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise DecodeError(f"corrupt or truncated image: {exc}") from exc
    except MemoryError as exc:
        raise ImageTooLarge("not enough memory to decode the image") from exc
    except Exception as exc:  # a hostile file can trip any check inside a Pillow plugin
        raise DecodeError(f"corrupt image ({type(exc).__name__}: {exc})") from exc


def _draft(img: Image.Image, min_side: int) -> None:
    """Sets ``img`` (a JPEG not yet decoded) to decode at the smallest DCT scale that keeps
    its longest side at least ``min_side``; leaves it at full size when no scale does."""
    width, height = img.size
    for s in JPEG_SCALES:
        # libjpeg rounds a scaled side up; the short side must keep a pixel too. Asked for
        # (width // s, height // s), Pillow picks exactly scale s.
        if -(-max(width, height) // s) >= min_side and min(width, height) >= s:
            img.draft(img.mode, (width // s, height // s))
            return


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # float32 in place: a 60 MP 16-bit scan stays at 240 MB, not 1 GB of float64 copies.
        arr = np.array(img, dtype=np.float32)  # a copy: an F image would give a read-only view
        lo, hi = float(arr.min()), float(arr.max())
        arr -= lo
        arr *= 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        img = background
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def encode_jpeg(rgb: np.ndarray, *, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
