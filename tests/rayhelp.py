"""Helpers for the Ray runner's tests: photos, the faces a catalog holds, Ray's presence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.catalog.base import Catalog
from tests.conftest import to_jpeg

RAY_MISSING = "the Ray runner is an extra: pip install 'faceindex[ray]'"
REPO = Path(__file__).resolve().parent.parent

FaceKey = tuple[str, tuple[int, int, int, int]]  # item, box


def needs_ray() -> object:
    return pytest.importorskip("ray", reason=RAY_MISSING)


def write_photos(folder: Path, astronaut: np.ndarray, n: int) -> Path:
    """``n`` distinct JPEGs (sizes, mirrored every other one), one face each."""
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(astronaut)
    for i in range(n):
        side = 200 + 10 * i
        variant = img.resize((side, side))
        if i % 2:
            variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (folder / f"img{i:02d}.jpg").write_bytes(to_jpeg(np.asarray(variant)))
    return folder


def faces_by_item(catalog: Catalog) -> dict[FaceKey, np.ndarray]:
    """(item, box) -> descriptor of every live face; raises on a face held twice."""
    out: dict[FaceKey, np.ndarray] = {}
    for ids, vecs in catalog.iter_embeddings():
        rows = catalog.faces([int(i) for i in ids])
        for face_id, vec in zip(ids, vecs, strict=True):
            row = rows[int(face_id)]
            b = row.bbox
            for loc in row.locations:
                key = (loc.locator, (b.left, b.top, b.right, b.bottom))
                if key in out:
                    raise AssertionError(f"face held twice: {key}")
                out[key] = vec
    return out


def assert_same_faces(got: dict[FaceKey, np.ndarray], want: dict[FaceKey, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for key, vec in want.items():
        np.testing.assert_allclose(got[key], vec, atol=1e-5, err_msg=str(key))
