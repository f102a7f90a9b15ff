"""A file replaced in place (same path, new bytes) is not an erasure request: the ingest that
replaced it retires the old image (erased, with a receipt), so no stale face is found after
it; and neither that retirement nor ``gc``'s tombstones the old bytes, which may be
ingested again from anywhere. Real models on scikit-image's astronaut."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.service import Governance
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governance]:
    home = tmp_path / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as g,
    ):
        yield g


def add(gov: Governance, name: str, folder: Path) -> None:
    gov.add_source(name, path=str(folder), owner="o", legal_basis="consent", retention_days=30)


def replace_file(photo: Path, data: bytes) -> None:
    stamp = photo.stat().st_mtime + 10
    photo.write_bytes(data)
    os.utime(photo, (stamp, stamp))


def faces_of(gov: Governance, sha: str) -> list[int]:
    held = gov.engine.catalog.images_holding([sha])
    return gov.engine.catalog.face_ids_of_images(list(held.values()))


@pytest.fixture
def replaced(gov: Governance, tmp_path: Path, astronaut: np.ndarray) -> tuple[Path, bytes]:
    """press/a.jpg ingested, then replaced by a mirrored copy; returns (folder, old bytes)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    old = to_jpeg(astronaut)
    (photos / "a.jpg").write_bytes(old)
    add(gov, "press", photos)
    assert gov.ingest("press", in_process=True).faces_indexed >= 1
    replace_file(photos / "a.jpg", to_jpeg(np.ascontiguousarray(astronaut[:, ::-1])))
    return photos, old


def test_the_ingest_that_replaced_a_file_retires_its_old_image(
    gov: Governance, replaced: tuple[Path, bytes], astronaut: np.ndarray
) -> None:
    _, old = replaced
    old_sha = hashlib.sha256(old).hexdigest()
    old_faces = faces_of(gov, old_sha)
    assert old_faces
    summary = gov.ingest("press", in_process=True)
    assert summary.images_new == 1
    # Before: the old image's faces stayed in catalog and index (no location) until gc.
    assert gov.engine.catalog.images_holding([old_sha]) == {}
    assert not set(old_faces) & set(gov.engine.index.ids().tolist())
    assert summary.images_retired == 1 and summary.retired_receipt
    assert gov.engine.stats()["images_unheld"] == 0
    # A search with the old photo finds only the new image's faces, never the retired ones.
    results = gov.search(old, case="c-1", purpose="test", top_k=10)
    assert results and not {m.face_id for r in results for m in r.matches} & set(old_faces)
    check = gov.verify_receipt(summary.retired_receipt)
    assert check.ok, check.problems
    receipt = check.receipt
    assert (receipt.kind, receipt.target, receipt.images_deleted) == ("replaced", "press", 1)
    assert receipt.faces_deleted == len(old_faces)
    assert gov.tombstones() == []  # nobody asked for an erasure: the bytes are not refused
    assert gov.gc().unheld_images_deleted == 0


def test_retired_bytes_may_be_ingested_again_elsewhere(
    gov: Governance, replaced: tuple[Path, bytes], tmp_path: Path
) -> None:
    _, old = replaced
    gov.ingest("press", in_process=True)
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    (elsewhere / "kept.jpg").write_bytes(old)
    add(gov, "archive", elsewhere)
    summary = gov.ingest("archive", in_process=True)
    assert summary.images_new == 1 and summary.skipped == []
    assert faces_of(gov, hashlib.sha256(old).hexdigest())


def test_gc_retires_an_unheld_image_with_a_receipt_but_no_tombstone(
    gov: Governance, replaced: tuple[Path, bytes], tmp_path: Path
) -> None:
    photos, old = replaced
    old_sha = hashlib.sha256(old).hexdigest()
    # An ingest outside governance (the engine's own) leaves the old image unheld for gc.
    gov.engine.ingest("press", in_process=True)
    assert gov.engine.stats()["images_unheld"] == 1
    report = gov.gc()
    assert report.unheld_images_deleted == 1 and report.receipt_id is not None
    assert gov.engine.catalog.images_holding([old_sha]) == {}
    assert gov.verify_receipt(report.receipt_id).ok
    # Before: gc tombstoned the replaced image's bytes, so a later copy was refused.
    assert gov.tombstones() == []
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    (elsewhere / "kept.jpg").write_bytes(old)
    add(gov, "archive", elsewhere)
    summary = gov.ingest("archive", in_process=True)
    assert summary.images_new == 1 and summary.skipped == []
