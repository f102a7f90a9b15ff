"""The catalog's erasure and retention queries (catalog/sql_erase.py) on SQLite and, where
FACEINDEX_TEST_PG_URL names a server, PostgreSQL: same calls, same answers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from faceindex.backends import open_catalog
from faceindex.catalog.base import Catalog, ImageOutcome, NewSource
from faceindex.errors import NotFoundError
from faceindex.types import BBox, DetectedFace, FaceQuality

pytestmark = pytest.mark.unit


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def cat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        admin = os.environ.get("FACEINDEX_TEST_PG_URL", "")
        if not admin:
            pytest.skip("PostgreSQL half needs FACEINDEX_TEST_PG_URL (scripts/start-postgres.sh)")
        url = f"{admin}{'&' if '?' in admin else '?'}schema=g_{uuid.uuid4().hex[:12]}"
    catalog = open_catalog(url)
    yield catalog
    with contextlib.suppress(Exception):
        catalog.close()


def face(seed: int) -> DetectedFace:
    return DetectedFace(
        bbox=BBox(1, 2, 40, 50),
        landmarks=((1.0, 2.0),),
        detector="hog",
        detector_score=1.0,
        quality=FaceQuality(size=40, sharpness=10.0, pose=0.0, score=0.9),
        embedding=np.random.default_rng(seed).normal(size=128).astype(np.float32),
        thumbnail=b"thumb",
    )


def src(cat: Catalog, name: str, days: int = 30) -> int:
    return cat.add_source(NewSource(name, "folder", f"/d/{name}", "o", "consent", days)).id


def put(cat: Catalog, source_id: int, locator: str, sha: str, faces: int) -> list[int]:
    out = ImageOutcome(
        source_id,
        locator,
        1,
        1.0,
        sha,
        10,
        10,
        tuple(face(hash(sha) % 999 + i) for i in range(faces)),
    )
    return [fid for fid, _ in cat.record([out], "m")]


def test_shared_images_survive_the_erasure_of_one_source(cat: Catalog) -> None:
    a, b = src(cat, "a"), src(cat, "b")
    only_a = put(cat, a, "1.jpg", "s1", 2)
    shared = put(cat, a, "2.jpg", "s2", 1)
    put(cat, b, "copy.jpg", "s2", 0)  # same bytes, seen in b too: no new faces
    assert cat.image_ids_of_source(a) == sorted(
        cat.faces(only_a + shared)[i].image_id for i in (only_a[0], shared[0])
    )
    erased = cat.delete_source(a)
    assert sorted(erased.face_ids) == sorted(only_a) and len(erased.image_ids) == 1
    assert erased.items == 2
    assert set(cat.faces(shared)) == set(shared)  # b still holds it
    assert [p.source for p in cat.faces(shared)[shared[0]].locations] == ["b"]
    with pytest.raises(NotFoundError):
        cat.get_source("a")


def test_erasing_images_takes_every_location_and_face(cat: Catalog) -> None:
    a, b = src(cat, "a"), src(cat, "b")
    fids = put(cat, a, "1.jpg", "s1", 2)
    put(cat, b, "again.jpg", "s1", 0)
    image = cat.faces(fids)[fids[0]].image_id
    assert sorted(cat.face_ids_of_images([image])) == sorted(fids)
    erased = cat.delete_images([image])
    assert sorted(erased.face_ids) == sorted(fids) and erased.image_ids == (image,)
    assert cat.existing_images([image]) == [] and cat.faces(fids) == {}
    assert cat.stats()["locations"] == 0


def test_expired_items_follow_each_source_retention(cat: Catalog) -> None:
    short, long_ = src(cat, "short", days=10), src(cat, "long", days=100)
    put(cat, short, "1.jpg", "s1", 1)
    put(cat, long_, "2.jpg", "s2", 1)
    cat.record([ImageOutcome(short, "bad.jpg", 1, 1.0, None, error="DecodeError")], "m")
    now = datetime.now(timezone.utc)
    assert cat.expired_items(now) == []
    later = cat.expired_items(now + timedelta(days=11))
    assert sorted(name for _, name in later) == ["short", "short"]
    erased = cat.delete_items([i for i, _ in later])
    assert len(erased.face_ids) == 1 and erased.items == 2
    assert len(cat.expired_items(now + timedelta(days=101))) == 1


def test_embeddings_are_returned_only_for_live_faces(cat: Catalog) -> None:
    fids = put(cat, src(cat, "a"), "1.jpg", "s1", 2)
    vecs = cat.embeddings(fids)
    assert set(vecs) == set(fids) and vecs[fids[0]].shape == (128,)
    cat.delete_faces([fids[0]])
    assert set(cat.embeddings(fids)) == {fids[1]}
    cat.checkpoint()
