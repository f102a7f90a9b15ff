"""The perceptual hash that links near-duplicate images (re-encoded, resized, lightly cropped,
greyscale copies of one photo) into one photo group.

A 64-bit DCT hash (the pHash construction): the image's luminance reduced to 32x32, its 2-D
DCT, the 8x8 lowest frequencies, one bit per coefficient above their median. Computed from
the pixels :func:`~faceindex.vision.decode.decode_image` already produced, so an ingest
decodes each image once. Two images are near-duplicates when their hashes differ in at most
:data:`NEAR_BITS` bits: the threshold belongs to the hash, as a face model's thresholds
belong to the model, and was chosen on measurements (benchmarks/photo_groups.py,
docs/BENCHMARKS.md "Photo groups").

Lookup scales by multi-index hashing: the hash is cut into :data:`BANDS` bands of 16 bits;
two hashes within ``t`` bits agree within ``t // BANDS`` bits on at least one band
(pigeonhole), so a lookup probes each band's values within that radius on an index and
checks the full Hamming distance only of the few candidates found.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np
from PIL import Image

__all__ = [
    "BANDS",
    "BAND_BITS",
    "HASH_NAME",
    "NEAR_BITS",
    "band_probes",
    "bands",
    "from_signed",
    "hamming",
    "perceptual_hash",
    "to_signed",
]

HASH_NAME = "dct64-v1"  # change it with the algorithm: stored hashes would not compare
BITS = 64
BANDS = 4
BAND_BITS = BITS // BANDS
NEAR_BITS = 10  # see the module docstring: measured, docs/BENCHMARKS.md "Photo groups"

_SIDE = 32  # the reduced image the DCT sees
_LOW = 8  # the kept frequencies per axis: 8 x 8 = 64 bits


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """The orthonormal DCT-II matrix of size 32 (rows: frequencies)."""
    n = np.arange(_SIDE)
    m = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * _SIDE))
    m[0] /= np.sqrt(2.0)
    return (m * np.sqrt(2.0 / _SIDE)).astype(np.float64)


def perceptual_hash(rgb: np.ndarray) -> int:
    """The 64-bit hash (unsigned) of an RGB or greyscale ``uint8`` image."""
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
    if img.mode != "L":
        img = img.convert("L")  # ITU-R 601 luma: a greyscale copy gives the same plane
    # BOX averages every source pixel into the 32x32 cells: the hash sees the whole image
    # at any size, and a 2x upscale or a 1/4 downscale average to nearly the same cells.
    small = np.asarray(img.resize((_SIDE, _SIDE), Image.Resampling.BOX), dtype=np.float64)
    d = _dct_matrix()
    low = (d @ small @ d.T)[:_LOW, :_LOW].ravel()
    # The median leaves out the DC term, which says only how bright the image is (its bit
    # is always set); the 63 others split about evenly.
    bits = low > np.median(low[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return int(bin((a ^ b) & ((1 << BITS) - 1)).count("1"))


def to_signed(h: int) -> int:
    """The unsigned hash as the signed 64-bit integer both SQL engines store."""
    return h - (1 << BITS) if h >= 1 << (BITS - 1) else h


def from_signed(v: int) -> int:
    return v + (1 << BITS) if v < 0 else v


def bands(h: int) -> tuple[int, ...]:
    """The hash's 16-bit bands, most significant first."""
    mask = (1 << BAND_BITS) - 1
    return tuple((h >> (BAND_BITS * (BANDS - 1 - i))) & mask for i in range(BANDS))


@lru_cache(maxsize=8)
def _flips(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    out = [0]
    for r in range(1, radius + 1):
        for pos in combinations(range(BAND_BITS), r):
            out.append(sum(1 << p for p in pos))
    return tuple(out)


def band_probes(h: int, max_bits: int = NEAR_BITS) -> list[list[int]]:
    """Per band, the band values a hash within ``max_bits`` of ``h`` may have there: some
    band of any such hash is one of these (pigeonhole over the bands)."""
    radius = max(0, max_bits) // BANDS
    return [[b ^ f for f in _flips(radius)] for b in bands(h)]
