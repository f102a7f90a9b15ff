"""Ingest end to end with the real models: bad files become recorded failures, duplicates
collapse, reruns resume, and search returns provenance."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.engine import Engine
from faceindex.errors import NoFaceError
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


def _register(engine: Engine, name: str, folder: Path) -> None:
    engine.add_source(
        name, path=str(folder), owner="Test desk", legal_basis="contract", retention_days=30
    )


@pytest.fixture
def gallery(tmp_path: Path, astronaut: np.ndarray) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "astronaut.jpg").write_bytes(to_jpeg(astronaut))
    (folder / "sub" / "copy-of-astronaut.jpg").write_bytes(to_jpeg(astronaut))  # same bytes
    small = np.asarray(Image.fromarray(astronaut).resize((300, 300)))
    (folder / "sub" / "small.png").write_bytes(_png(small))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_bytes(b"meeting notes, not a picture")  # wrong extension
    (folder / "truncated.jpg").write_bytes(to_jpeg(astronaut)[:5000])
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, format="PNG")
    (folder / "bomb.png").write_bytes(buf.getvalue())
    (folder / "readme.txt").write_text("not an image extension: not listed")
    return folder


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_files_are_recorded_and_the_batch_goes_on(engine: Engine, gallery: Path) -> None:
    _register(engine, "photos", gallery)
    summary = engine.ingest("photos")
    failed = dict(summary.failed)
    assert set(failed) == {"empty.jpg", "notes.jpg", "truncated.jpg", "bomb.png"}
    assert "empty" in failed["empty.jpg"]
    assert "not an image" in failed["notes.jpg"]
    assert "truncated" in failed["truncated.jpg"] or "corrupt" in failed["truncated.jpg"]
    assert "ImageTooLarge" in failed["bomb.png"]
    assert summary.images_new == 3
    # Same bytes at two paths: one image, two locations, faces indexed once.
    stats = engine.stats()
    assert stats["images"] == 2 and stats["locations"] == 3 and stats["failed"] == 4
    assert stats["faces"] == stats["index_vectors"] == summary.faces_indexed
    assert {r[1] for r in engine.catalog.failures()} == set(failed)


def test_rerun_resumes_without_duplicates(engine: Engine, gallery: Path) -> None:
    _register(engine, "photos", gallery)
    first = engine.ingest("photos")
    again = engine.ingest("photos")
    assert again.images_new == 0 and again.faces_indexed == 0
    assert again.images_skipped == first.images_seen
    assert engine.stats()["faces"] == first.faces_indexed
    # A new file is picked up by the next run.
    (gallery / "later.jpg").write_bytes(
        to_jpeg(np.ascontiguousarray(np.asarray(Image.open(gallery / "astronaut.jpg"))[:, ::-1]))
    )
    third = engine.ingest("photos")
    assert third.images_new == 1 and third.faces_indexed >= 1


def test_search_returns_matches_with_provenance(
    engine: Engine, gallery: Path, astronaut: np.ndarray
) -> None:
    _register(engine, "photos", gallery)
    engine.ingest("photos")
    probe = to_jpeg(np.asarray(Image.fromarray(astronaut).rotate(8)), quality=70)
    results = engine.search(probe, top_k=5, largest=True)
    assert len(results) == 1
    best = results[0].matches[0]
    assert best.decision == "match" and best.distance < 0.6
    assert best.stranger_chance < 0.01 and results[0].gallery_size == engine.catalog.count_faces()
    assert best.expected_strangers == pytest.approx(best.fmr * results[0].gallery_size, rel=0.01)
    # One photo group: the same bytes at two paths, and small.png, a resized copy of them.
    assert {p.locator for p in best.locations} == {
        "astronaut.jpg",
        "sub/copy-of-astronaut.jpg",
        "sub/small.png",
    }
    assert all(p.source == "photos" for p in best.locations)
    assert best.bbox.width > 50 and 0 <= best.quality <= 1
    assert engine.catalog.thumbnail(best.face_id)[:2] == b"\xff\xd8"  # a JPEG thumbnail


def test_every_face_in_the_probe_is_searched(
    engine: Engine, gallery: Path, astronaut: np.ndarray
) -> None:
    _register(engine, "photos", gallery)
    engine.ingest("photos")
    twice = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    results = engine.search(to_jpeg(np.ascontiguousarray(twice)), top_k=3)
    real = [r for r in results if r.matches and r.matches[0].decision == "match"]
    assert len(real) >= 2
    assert len(engine.search(to_jpeg(np.ascontiguousarray(twice)), top_k=3, largest=True)) == 1


def test_probe_without_a_face_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(NoFaceError):
        engine.search(to_jpeg(np.full((200, 200, 3), 128, dtype=np.uint8)))


@pytest.mark.parametrize("shape", [(3, 2000), (2000, 3), (15, 15)])
def test_a_tiny_or_strip_probe_is_no_face_not_a_dlib_error(
    engine: Engine, shape: tuple[int, int]
) -> None:
    # Before: dlib's CNN fallback raised its assertion text and build paths (and on a 2x2
    # probe aborted the process).
    probe = _png(np.full((*shape, 3), 128, dtype=np.uint8))
    with pytest.raises(NoFaceError, match="smaller than the smallest face"):
        engine.search(probe)


def test_source_filter(
    engine: Engine, gallery: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "mirror.jpg").write_bytes(to_jpeg(np.ascontiguousarray(astronaut[:, ::-1])))
    _register(engine, "photos", gallery)
    _register(engine, "other", other)
    engine.ingest("photos")
    engine.ingest("other")
    probe = to_jpeg(astronaut)
    only_other = engine.search(probe, top_k=10, largest=True, sources=["other"])[0].matches
    assert only_other and all(p.source == "other" for m in only_other for p in m.locations)
    both = engine.search(probe, top_k=10, largest=True)[0].matches
    assert {p.source for m in both for p in m.locations} == {"photos", "other"}


def test_quality_floor_is_counted(tmp_path: Path, gallery: Path) -> None:
    from faceindex.config import Settings

    settings = Settings.load(tmp_path / "strict", workers=1, quality_floor=1.0)
    with Engine.open(settings, create=True) as engine:
        _register(engine, "photos", gallery)
        summary = engine.ingest("photos")
    assert summary.faces_indexed == 0
    assert summary.faces_below_quality >= 2
