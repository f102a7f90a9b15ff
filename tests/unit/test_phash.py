"""The perceptual hash of photo groups (vision/phash.py): copies of one photo stay within
its threshold, different photos do not, the band lookup never misses a near hash, and the
ingest stage takes the hash from the pixels it decoded."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from faceindex.vision.decode import decode_image
from faceindex.vision.phash import (
    NEAR_BITS,
    band_probes,
    bands,
    from_signed,
    hamming,
    perceptual_hash,
    to_signed,
)
from tests.unit.test_pipeline_stages import Analyzer, Source, run

pytestmark = pytest.mark.unit
LIMITS = {"max_pixels": 10**8, "max_bytes": 10**8}


def jpeg(img: Image.Image, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return decode_image(buf.getvalue(), **LIMITS)


def test_copies_of_one_photo_are_near_and_other_photos_are_not(astronaut: np.ndarray) -> None:
    from skimage import data

    img = Image.fromarray(astronaut)
    h = perceptual_hash(astronaut)
    q60 = jpeg(img, 60)
    w, ht = img.size
    copies = {
        "q30": jpeg(img, 30),
        "q60": q60,
        "q60, 3/4": jpeg(Image.fromarray(q60).resize((w * 3 // 4, ht * 3 // 4)), 90),
        "half": jpeg(img.resize((w // 2, ht // 2)), 90),
        "double": jpeg(img.resize((w * 2, ht * 2)), 90),
        "grey": jpeg(img.convert("L").convert("RGB"), 90),
    }
    for name, rgb in copies.items():
        assert hamming(h, perceptual_hash(rgb)) <= NEAR_BITS, name
    for other in (data.coffee(), data.chelsea(), data.rocket()):
        assert hamming(h, perceptual_hash(np.asarray(other))) > 2 * NEAR_BITS


def test_a_greyscale_plane_hashes_like_its_rgb_copy(astronaut: np.ndarray) -> None:
    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    assert perceptual_hash(grey) == perceptual_hash(np.stack([grey] * 3, axis=-1))


def test_signed_storage_round_trips() -> None:
    for h in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        v = to_signed(h)
        assert -(1 << 63) <= v < 1 << 63 and from_signed(v) == h


def test_every_hash_within_the_threshold_shares_a_probed_band_value() -> None:
    rng = random.Random(7)
    for _ in range(300):
        h = rng.getrandbits(64)
        near = h
        for bit in rng.sample(range(64), rng.randint(0, NEAR_BITS)):
            near ^= 1 << bit
        probes = band_probes(h)
        assert any(b in probes[i] for i, b in enumerate(bands(near)))
    # and the probes stay few: a lookup is a handful of indexed IN lists, not a scan
    assert sum(len(p) for p in band_probes(0)) <= 4 * 137


def test_the_ingest_stage_hashes_the_pixels_it_decoded(astronaut: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    out = run(Source(buf.getvalue()), Analyzer())
    assert out.error is None and out.phash == perceptual_hash(astronaut)
    failed = run(Source(b"not an image"), Analyzer())
    assert failed.error is not None and failed.phash is None
