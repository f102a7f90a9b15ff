"""An erasure holds: erased bytes are refused by every later ingest until a lift (audited),
and ``verify_receipt`` checks content as well as ids. Real models on scikit-image's
astronaut, in three sizes (three images, one face each)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import InputError, NotFoundError, PermissionDenied
from faceindex.governance.roles import Actor, Role
from faceindex.governance.service import Governance
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("tomb-photos")
    img = Image.fromarray(astronaut)
    for i, side in enumerate((300, 360, 420)):
        (folder / f"img{i}.jpg").write_bytes(to_jpeg(np.asarray(img.resize((side, side)))))
    return folder


@pytest.fixture(scope="module")
def ingested(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tomb") / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as gov,
    ):
        add(gov, "press", photos)
        assert gov.ingest("press", in_process=True).images_new == 3
    return home


@pytest.fixture
def gov(ingested: Path, tmp_path: Path) -> Iterator[Governance]:
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as g:
        yield g


def add(gov: Governance, name: str, folder: Path) -> None:
    gov.add_source(name, path=str(folder), owner="o", legal_basis="consent", retention_days=30)


def image_of(gov: Governance, locator: str) -> tuple[int, str]:
    cat = gov.engine.catalog
    for face in cat.faces(cat.live_face_ids().tolist()).values():
        if any(loc.locator == locator for loc in face.locations):
            return face.image_id, face.image_sha256
    raise AssertionError(f"{locator} is not held")


def test_an_erased_image_is_not_ingested_again_from_any_source(
    gov: Governance, photos: Path, tmp_path: Path
) -> None:
    image_id, sha = image_of(gov, "img1.jpg")
    receipt = gov.erase_images([image_id], reason="request 12")
    assert receipt.images_deleted == 1
    again = gov.ingest("press", in_process=True)  # the file is unchanged, so it is re-read
    assert again.images_new == 0 and again.faces_indexed == 0
    assert again.skipped == [("img1.jpg", f"erased (receipt {receipt.id})")]
    copy = tmp_path / "mirror"  # the same bytes under another name, in another source
    copy.mkdir()
    shutil.copy(photos / "img1.jpg", copy / "renamed.jpg")
    add(gov, "mirror", copy)
    other = gov.ingest("mirror", in_process=True)
    assert other.faces_indexed == 0 and other.skipped[0][0] == "renamed.jpg"
    assert gov.engine.catalog.images_holding([sha]) == {}
    check = gov.verify_receipt(receipt.id)
    assert check.ok and not check.content_held, check.problems
    end = [e.event for e in gov.audit.entries() if e.event.action == "ingest"][-1]
    assert end.details["images_erased_before"] == 1


def test_a_source_erasure_tombstones_its_images_and_a_rerun_returns_the_receipt(
    gov: Governance, photos: Path
) -> None:
    receipt = gov.erase_source("press", reason="contract ended")
    assert receipt.images_deleted == 3 and len(gov.tombstones(receipt.id)) == 3
    assert gov.erase_source("press").id == receipt.id  # not "no source named press"
    add(gov, "press-again", photos)  # the same folder again: the erased bytes stay out
    summary = gov.ingest("press-again", in_process=True)
    assert summary.faces_indexed == 0 and len(summary.skipped) == 3
    assert gov.verify_receipt(receipt.id).ok


def test_verify_fails_when_the_erased_content_is_held_again(gov: Governance, photos: Path) -> None:
    image_id, sha = image_of(gov, "img2.jpg")
    receipt = gov.erase_images([image_id])
    officer = gov.acting_as(Actor("pia", Role.PRIVACY_OFFICER))
    with pytest.raises(InputError):
        officer.lift_tombstone(sha, reason=" ")
    with pytest.raises(PermissionDenied):
        gov.acting_as(Actor("ivan", Role.INVESTIGATOR)).lift_tombstone(sha, reason="x")
    assert officer.lift_tombstone(sha, reason="ruling 7: consent renewed") == [sha]
    with pytest.raises(NotFoundError):
        officer.lift_tombstone(sha, reason="again")
    summary = gov.ingest("press", in_process=True)
    assert summary.images_new == 1 and not summary.skipped
    check = gov.verify_receipt(receipt.id)
    assert not check.ok and check.content_held == (gov.engine.catalog.images_holding([sha])[sha],)
    assert any("held again" in p and "lifted" in p for p in check.problems)
    lifts = [e.event for e in gov.audit.entries() if e.event.action == "tombstone-lift"]
    assert [(e.actor, e.details["reason"]) for e in lifts] == [("pia", "ruling 7: consent renewed")]


def test_a_lift_by_receipt_and_tombstones_are_shown_only_to_erasers(gov: Governance) -> None:
    ids = [image_of(gov, f"img{i}.jpg")[0] for i in (0, 1)]
    receipt = gov.erase_images(ids)
    with pytest.raises(PermissionDenied):
        gov.acting_as(Actor("aude", Role.AUDITOR)).tombstones()
    shas = sorted(t.sha256 for t in gov.tombstones())
    assert len(shas) == 2 and all(len(s) == 64 for s in shas)
    assert gov.lift_tombstone(receipt.id, reason="appeal upheld") == shas
    assert gov.tombstones() == []
    assert gov.ingest("press", in_process=True).images_new == 2


def test_face_erasure_keeps_no_tombstone_but_the_face_stays_gone(gov: Governance) -> None:
    image_id, _ = image_of(gov, "img0.jpg")
    face = next(iter(gov.engine.catalog.face_ids_of_images([image_id])))
    receipt = gov.erase_faces([face])
    assert gov.tombstones(receipt.id) == [] and gov.engine.catalog.existing_images([image_id])
    assert gov.verify_receipt(receipt.id).ok


def test_the_tombstone_is_a_hash_of_the_bytes(gov: Governance, photos: Path) -> None:
    image_id, sha = image_of(gov, "img0.jpg")
    assert sha == hashlib.sha256((photos / "img0.jpg").read_bytes()).hexdigest()
    gov.erase_images([image_id])
    assert [t.sha256 for t in gov.tombstones()] == [sha]


def test_gc_erases_bytes_an_ingest_raced_back_in(gov: Governance) -> None:
    image_id, sha = image_of(gov, "img1.jpg")
    receipt = gov.erase_images([image_id])
    # An ingest that screened its batch before the erasure's intent and committed after it
    # saw no tombstone: the engine's ingest without the screen is what it did.
    gov.engine.ingest("press", in_process=True)
    assert gov.engine.catalog.images_holding([sha])
    assert not gov.verify_receipt(receipt.id).ok
    report = gov.gc()
    assert (report.erased_again, report.images_deleted, report.faces_deleted) == (1, 0, 0)
    assert gov.verify_receipt(receipt.id).ok and report.receipt_id is not None
    assert gov.verify_receipt(report.receipt_id).ok
    assert len(gov.tombstones(report.receipt_id)) == 1
