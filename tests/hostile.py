"""A hostile-image corpus the project generates: what a careless or malicious folder holds.

:func:`build_folder` writes bombs (declared and real), truncations, odd modes, odd names
(non-UTF-8, newline, 250 bytes, markup), FIFOs and sockets, symlink loops, broken and
escaping links, zero-byte files, tiny and strip images into a folder; :func:`build_tar` and
:func:`build_zip` put the file entries into archives. Each returns a manifest: every entry's
locator (as the catalog shows it) and the status ingest must give it (``ok``, ``failed``,
``skipped``, or ``any`` where either failed or ok is a right answer). Used by
tests/integration/test_ingest_hostile.py and benchmarks/hostile.py.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Manifest", "build_folder", "build_tar", "build_zip", "image_files"]

Manifest = dict[str, str]  # locator -> "ok" | "failed" | "skipped" | "any"


def _noise(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declared(w: int, h: int) -> bytes:
    """A PNG header declaring w x h pixels with one tiny IDAT: a bomb by its dimensions."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_text_bomb() -> bytes:
    """A small PNG carrying a zTXt chunk that inflates to 64 MB of text."""
    base = _save(Image.fromarray(_noise(16, 16)), "PNG")
    text = b"Comment\0\0" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    iend = base.rindex(b"IEND") - 4
    return base[:iend] + _png_chunk(b"zTXt", text) + base[iend:]


def _gif_frames(n: int) -> bytes:
    frames = [Image.new("P", (8, 8), i % 256) for i in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=10)
    return buf.getvalue()


def _modes() -> dict[str, bytes]:
    rgb = Image.fromarray(_noise(96, 72, 1))
    grey16 = Image.fromarray(np.arange(96 * 72, dtype=np.uint16).reshape(72, 96) * 9)
    exif = Image.Exif()
    exif[0x0112] = 99  # an orientation that does not exist
    return {
        "modes/cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "modes/cmyk.tif": _save(rgb.convert("CMYK"), "TIFF"),
        "modes/i16.png": _save(grey16, "PNG"),
        "modes/i16.tif": _save(grey16, "TIFF"),
        "modes/float.tif": _save(grey16.convert("F"), "TIFF"),
        "modes/palette.png": _save(rgb.convert("P"), "PNG"),
        "modes/la.png": _save(rgb.convert("LA"), "PNG"),
        "modes/1bit.png": _save(rgb.convert("1"), "PNG"),
        "modes/1bit.bmp": _save(rgb.convert("1"), "BMP"),
        "modes/l.jpg": _save(rgb.convert("L"), "JPEG"),
        "modes/rgba.webp": _save(rgb.convert("RGBA"), "WEBP"),
        "modes/palette-alpha.png": _save(rgb.convert("P"), "PNG", transparency=0),
        "modes/ycbcr.jpg": _save(rgb.convert("YCbCr"), "JPEG"),
        "modes/lab.tif": _save(rgb.convert("LAB"), "TIFF"),
        "modes/bad-exif.jpg": _save(rgb, "JPEG", exif=exif),
        "modes/1000-frames.gif": _gif_frames(1000),
        "modes/progressive.jpg": _save(rgb, "JPEG", progressive=True),
    }


def _broken() -> tuple[dict[str, bytes], dict[str, str]]:
    rgb = Image.fromarray(_noise(128, 128, 2))
    jpeg, png = _save(rgb, "JPEG"), _save(rgb, "PNG")
    files = {
        "bombs/pixels-1bit.png": _save(Image.new("1", (12000, 12000)), "PNG"),
        "bombs/declared-30000.png": _png_declared(30000, 30000),
        "bombs/declared-1x100M.png": _png_declared(1, 100_000_000),
        "bombs/ztxt-64MB.png": _png_text_bomb(),  # Pillow caps text chunks: either answer
        "truncated/half.jpg": jpeg[: len(jpeg) // 2],
        "truncated/header.jpg": jpeg[:20],
        "truncated/half.png": png[: len(png) // 2],
        "truncated/signature.png": png[:8],
        "truncated/half.webp": _save(rgb, "WEBP")[:200],
        "truncated/half.gif": _save(rgb.convert("P"), "GIF")[:100],
        "truncated/half.tif": _save(rgb, "TIFF")[:300],
        "garbage/random.jpg": np.random.default_rng(3).bytes(5000),
        "garbage/text.png": b"this is a text file with an image's name\n" * 20,
        "garbage/zero.jpg": b"",
    }
    expect = {name: "failed" for name in files}
    # A truncated JPEG or GIF may decode to a grey-filled image; both answers are honest.
    for name in (
        "truncated/half.jpg",
        "truncated/half.gif",
        "truncated/half.tif",
        "bombs/ztxt-64MB.png",
    ):
        expect[name] = "any"
    return files, expect


def _sizes() -> dict[str, bytes]:
    return {
        f"tiny/{w}x{h}.png": _save(Image.fromarray(_noise(w, h, w + h)), "PNG")
        for w, h in ((1, 1), (2, 2), (7, 5), (1, 3000), (3000, 1), (19, 400), (25, 4000), (4000, 3))
    }


def _names() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(files with odd but valid names, files whose names are not UTF-8, as bytes)."""
    jpeg = _save(Image.fromarray(_noise(64, 64, 4)), "JPEG")
    png = _save(Image.fromarray(_noise(64, 64, 5)), "PNG")
    odd = {
        "names/new\nline.jpg": jpeg,
        "names/" + "L" * 246 + ".jpg": png,
        "names/[bold]markup[/bold].jpg": _save(Image.fromarray(_noise(40, 40, 6)), "JPEG"),
        "names/-rf *.jpg": _save(Image.fromarray(_noise(41, 41, 7)), "JPEG"),
        "names/caf\u00e9 nfc.jpg": _save(Image.fromarray(_noise(42, 42, 8)), "JPEG"),
        "names/cafe\u0301 nfd.jpg": _save(Image.fromarray(_noise(43, 43, 9)), "JPEG"),
        "names/back\\slash.jpg": _save(Image.fromarray(_noise(44, 44, 10)), "JPEG"),
        "names/UPPER.JPEG": _save(Image.fromarray(_noise(45, 45, 11)), "JPEG"),
        "names/.hidden.png": _save(Image.fromarray(_noise(46, 46, 12)), "PNG"),
        "names/photo-without-extension": _save(Image.fromarray(_noise(47, 47, 13)), "JPEG"),
        "names/really-a-png.txt": _save(Image.fromarray(_noise(48, 48, 14)), "PNG"),
        "names/readme": b"notes about the photos, not a photo\n",
        "names/empty-noext": b"",
        "names/" + "/".join(f"d{i}" for i in range(40)) + "/deep.jpg": jpeg,  # same bytes
    }
    raw = {
        "names/latin1-caf\xe9.jpg": _save(Image.fromarray(_noise(49, 49, 15)), "JPEG"),
        "names/invalid-\xff\xfe.png": _save(Image.fromarray(_noise(50, 50, 16)), "PNG"),
        "names/dir-\xe9\xff/inside.jpg": _save(Image.fromarray(_noise(51, 51, 17)), "JPEG"),
    }
    return odd, raw


def _printable(name: str) -> str:
    from faceindex.sources.base import printable

    return printable(name)


def image_files() -> tuple[dict[str, bytes], Manifest]:
    """Every regular file of the corpus (name -> bytes; non-UTF-8 names carry surrogates)
    and the status each must get: what the folder and the archives share."""
    broken, expect = _broken()
    odd, raw = _names()
    files: dict[str, bytes] = {**_modes(), **broken, **_sizes(), **odd}
    for name, data in raw.items():
        files[name.encode("latin-1").decode("utf-8", "surrogateescape")] = data
    manifest: Manifest = {_printable(n): "ok" for n in files}
    manifest.update(expect)
    manifest["modes/lab.tif"] = "any"  # Pillow may not convert LAB to RGB
    for name in ("names/readme", "names/empty-noext"):
        manifest[name] = "skipped"
    return files, manifest


def _special(root: Path, outside: Path) -> Manifest:
    """FIFOs, a socket and every kind of symlink that must not be followed."""
    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "pipe.jpg")
    os.mkfifo(special / "pipe-noext")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(special / "socket.png"))
    finally:
        sock.close()
    links: dict[str, str] = {
        "loop-a.jpg": "loop-b.jpg",
        "loop-b.jpg": "loop-a.jpg",
        "self.jpg": "self.jpg",
        "broken.jpg": "missing.jpg",
        "escape.jpg": str(outside),
        "dir-loop": ".",
        "inside.jpg": "../modes/cmyk.jpg",
    }
    for name, target in links.items():
        (special / name).symlink_to(target)
    manifest = {f"special/{n}": "skipped" for n in links}
    manifest["special/inside.jpg"] = "ok"
    manifest.update({f"special/{n}": "skipped" for n in ("pipe.jpg", "pipe-noext", "socket.png")})
    return manifest


def build_folder(root: Path, outside: Path | None = None) -> Manifest:
    """Write the corpus under ``root`` (created); ``outside`` is a file an escaping link
    points at (created beside ``root`` when not given)."""
    root.mkdir(parents=True)
    files, manifest = image_files()
    for name, data in files.items():
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    if outside is None:
        outside = root.parent / f"{root.name}-outside.jpg"
        outside.write_bytes(files["modes/cmyk.jpg"])
    manifest.update(_special(root, outside))
    return manifest


def _archive_manifest(extra: dict[str, bytes], big: str) -> tuple[dict[str, bytes], Manifest]:
    files, manifest = image_files()
    for name in [n for n in files if "\\" in n]:  # an archive with one is refused whole
        del files[name]
        del manifest[_printable(name)]
    files.update(extra)
    manifest.update({_printable(n): "ok" for n in extra})
    manifest[big] = "failed"
    return files, manifest


def build_tar(path: Path, *, max_bytes: int, mode: str = "w:gz") -> Manifest:
    """The corpus's files as a tar (non-UTF-8 member names included), plus a member over
    ``max_bytes``."""
    big = "big/over-the-limit.jpg"
    files, manifest = _archive_manifest({big: b"\xff\xd8\xff" + b"\0" * max_bytes}, big)
    # GNU format writes names as raw bytes, the way tar on Linux stores a non-UTF-8 name.
    with tarfile.open(
        path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return manifest


def build_zip(path: Path, *, max_bytes: int) -> Manifest:
    """The corpus's files as a zip (non-UTF-8 names stored unflagged, read as cp437)."""
    big = "big/over-the-limit.jpg"
    files, manifest = _archive_manifest({big: b"\xff\xd8\xff" + b"\0" * max_bytes}, big)
    renamed: Manifest = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            raw = name.encode("utf-8", "surrogateescape")
            try:
                raw.decode("utf-8")
                stored = name
            except UnicodeDecodeError:
                stored = raw.decode("cp437")  # zipfile writes cp437 names unflagged
                renamed[_printable(name)] = stored
            zf.writestr(stored, data)
    for before, after in renamed.items():
        manifest[after] = manifest.pop(before)
    return manifest
