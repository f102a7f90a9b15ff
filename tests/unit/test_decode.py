"""Decoding: every supported format to RGB, EXIF orientation, and clear errors for bad bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceindex.errors import DecodeError, ImageTooLarge
from faceindex.vision.decode import decode_image

pytestmark = pytest.mark.unit

LIMITS = {"max_pixels": 60_000_000, "max_bytes": 64 * 1024 * 1024}


def _gradient(w: int = 64, h: int = 48) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    y = np.linspace(0, 255, h, dtype=np.uint8)
    return np.stack(
        np.broadcast_arrays(x[None, :], y[:, None], (x[None, :] // 2 + y[:, None] // 2)), axis=2
    ).astype(np.uint8)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("PNG", "L"),
        ("PNG", "I;16"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("PPM", "RGB"),
        ("PPM", "L"),
        ("TIFF", "F"),
        ("TIFF", "I;16"),
        ("TIFF", "CMYK"),
        ("JPEG", "CMYK"),
        ("PNG", "LA"),
        ("PNG", "1"),
    ],
)
def test_formats_decode_to_rgb(fmt: str, mode: str) -> None:
    img = Image.fromarray(_gradient())
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
    elif mode != "RGB":
        img = img.convert(mode)
    rgb = decode_image(_encode(img, fmt), **LIMITS)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (48, 64, 3)
    # The gradient survives: left edge darker than right edge in the first channel.
    assert rgb[:, :8, 0].mean() < rgb[:, -8:, 0].mean()


def test_rgba_is_composited_on_white() -> None:
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgb = decode_image(_encode(img, "PNG"), **LIMITS)
    assert (rgb == 255).all()


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), c).convert("P") for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    rgb = decode_image(buf.getvalue(), **LIMITS)
    assert rgb[5, 5, 0] > 200 and rgb[5, 5, 2] < 50


def test_exif_orientation_is_applied() -> None:
    img = Image.fromarray(_gradient(64, 48))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb = decode_image(_encode(img, "JPEG", exif=exif), **LIMITS)
    assert rgb.shape == (64, 48, 3)


def test_extension_does_not_matter() -> None:
    # A PNG handed over as if it were anything else still decodes: we sniff the bytes.
    assert decode_image(_encode(Image.fromarray(_gradient()), "PNG"), **LIMITS).shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not a photo", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "corrupt|truncated|not an image"),
    ],
)
def test_bad_bytes_raise_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_image(data, **LIMITS)


def test_truncated_jpeg_raises_decode_error() -> None:
    data = _encode(Image.fromarray(_gradient(256, 256)), "JPEG", quality=95)
    with pytest.raises(DecodeError, match="truncated|corrupt"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # 12000 x 12000 one-bit PNG: a few hundred KB on disk, 144 M pixels once decoded.
    bomb = _encode(Image.new("1", (12000, 12000)), "PNG")
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(bomb, **LIMITS)


def test_byte_limit() -> None:
    data = _encode(Image.fromarray(_gradient()), "PNG")
    with pytest.raises(ImageTooLarge, match="byte"):
        decode_image(data, max_pixels=10**9, max_bytes=len(data) - 1)


def test_sniffing_names_the_format_from_the_first_bytes_only() -> None:
    from faceindex.vision.decode import sniff_image

    assert sniff_image(_encode(Image.fromarray(_gradient()), "PNG")[:16]) == "PNG"
    assert sniff_image(_encode(Image.fromarray(_gradient()), "JPEG")[:16]) == "JPEG"
    assert sniff_image(b"notes about the photos") is None
    assert sniff_image(b"hi") is None  # too short for some formats' checks: not an error
    assert sniff_image(b"") is None


def _photo_like(w: int, h: int) -> np.ndarray:
    """A w x h image with detail at every scale (a JPEG of it is not mostly flat blocks)."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    return np.ascontiguousarray(big)


@pytest.mark.parametrize(
    ("min_side", "decoded"),
    [
        (1700, (2000, 1500)),  # 1/2: 1/4 would be 1000 px, under the side asked for
        (1000, (1000, 750)),  # 1/4 exactly reaches it
        (1001, (2000, 1500)),
        (500, (500, 375)),  # 1/8, libjpeg's smallest
        (100, (500, 375)),
        (2001, (4000, 3000)),  # no scale keeps 2001 px: full size
        (0, (4000, 3000)),  # 0: never reduced
    ],
)
def test_a_large_jpeg_decodes_at_the_smallest_scale_that_keeps_the_side(
    min_side: int, decoded: tuple[int, int]
) -> None:
    from faceindex.vision.decode import decode_reduced

    data = _encode(Image.new("RGB", (4000, 3000), (90, 120, 200)), "JPEG")
    out = decode_reduced(data, **LIMITS, min_side=min_side)
    assert (out.rgb.shape[1], out.rgb.shape[0]) == decoded
    assert (out.width, out.height) == (4000, 3000)  # the image's own size, whatever decoded
    assert out.rgb.dtype == np.uint8 and out.rgb.flags.c_contiguous


def test_a_reduced_decode_is_the_image_at_that_scale() -> None:
    # Odd sides: libjpeg rounds the scaled sides up (3061 -> 1531).
    from faceindex.vision.decode import decode_reduced

    rgb = _photo_like(3061, 2300)
    data = _encode(Image.fromarray(rgb), "JPEG", quality=95)
    out = decode_reduced(data, **LIMITS, min_side=1500)
    assert out.rgb.shape == (1150, 1531, 3) and (out.width, out.height) == (3061, 2300)
    full = decode_image(data, **LIMITS)
    shrunk = np.asarray(Image.fromarray(full).resize((1531, 1150), Image.Resampling.BOX))
    assert np.abs(out.rgb.astype(int) - shrunk.astype(int)).mean() < 3.0


def test_a_reduced_decode_applies_exif_orientation_and_reports_the_upright_size() -> None:
    from faceindex.vision.decode import decode_reduced

    stored = np.zeros((3000, 4000, 3), np.uint8)
    stored[:200, :200] = (255, 0, 0)  # a red corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: rotate 90 degrees clockwise to display
    data = _encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    out = decode_reduced(data, **LIMITS, min_side=1700)
    assert (out.width, out.height) == (3000, 4000)  # upright: portrait
    assert out.rgb.shape == (2000, 1500, 3)
    # Turned clockwise, the stored top-left corner is the upright top right.
    full = decode_image(data, **LIMITS)
    assert full[50, -50, 0] > 200 and full[50, -50, 1] < 60
    assert out.rgb[25, -25, 0] > 200 and out.rgb[25, -25, 1] < 60
    assert out.rgb[-25, 25, 0] < 60


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_large_image_of_another_format_decodes_at_full_size(fmt: str) -> None:
    from faceindex.vision.decode import decode_reduced

    data = _encode(Image.new("RGB", (3400, 1000), (10, 200, 10)), fmt)
    out = decode_reduced(data, **LIMITS, min_side=1700)
    assert out.rgb.shape == (1000, 3400, 3) and (out.width, out.height) == (3400, 1000)


def test_the_pixel_limit_applies_to_the_image_not_to_its_reduced_decode() -> None:
    from faceindex.vision.decode import decode_reduced

    data = _encode(Image.new("RGB", (4000, 3000)), "JPEG")
    with pytest.raises(ImageTooLarge, match="12000000 pixels"):
        decode_reduced(data, max_pixels=10_000_000, max_bytes=1 << 26, min_side=1000)
