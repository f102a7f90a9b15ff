"""Image decoding: the only code in faceindex that turns image bytes into pixels."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceindex.errors import DecodeError, ImageTooLarge

__all__ = ["decode_image", "encode_jpeg"]


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> np.ndarray:
    """Decode any supported image to an RGB ``uint8`` array of shape (H, W, 3).

    EXIF orientation is applied; greyscale, 16-bit, palette and alpha images are converted;
    animated images give their first frame. The format is sniffed from the bytes, so a file's
    extension does not matter. Raises :class:`DecodeError` or :class:`ImageTooLarge`.
    """
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
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            upright: Image.Image = ImageOps.exif_transpose(img) or img
            return _to_rgb(upright)
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not an image in a supported format") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise DecodeError(f"corrupt or truncated image: {exc}") from exc


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8), mode="L")
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
