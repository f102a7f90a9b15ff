"""Erasure, opt-out, subject access and retention with the real models on real photos.

face-recognition-knn holds five people with 2-3 photos each; it is ingested once per module
and each test works on its own copy of that engine home.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import AuditError, NotFoundError, PermissionDenied, SourceRefused
from faceindex.governance.roles import Actor, Role
from faceindex.governance.service import Governance

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]


@pytest.fixture(scope="module")
def gallery(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(engine home with the five people ingested, the photo folder)."""
    knn = shared_faces / "face-recognition-knn"
    home = tmp_path_factory.mktemp("gallery") / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as gov,
    ):
        gov.add_source(
            "knn", path=str(knn), owner="tests", legal_basis="consent", retention_days=365
        )
        summary = gov.ingest("knn", in_process=True)
    assert summary.faces_indexed == 12
    return home, knn


@pytest.fixture
def home(gallery: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(gallery[0], copy)
    return copy


@pytest.fixture
def knn(gallery: tuple[Path, Path]) -> Path:
    return gallery[1]


@pytest.fixture
def gov(home: Path) -> Iterator[Governance]:
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as g:
        yield g


def photo(knn: Path, rel: str) -> bytes:
    return (knn / rel).read_bytes()


def people_found(gov: Governance, probe: bytes, decision: str = "match") -> set[str]:
    results = gov.search(probe, case="T-1", purpose="testing")
    return {
        loc.locator.split("/")[0]
        for r in results
        for m in r.matches
        if m.decision == decision
        for loc in m.locations
    }


def reencoded_copies(knn: Path, rels: list[str], folder: Path) -> Path:
    """New bytes of the same photos, as a second collection would hold them."""
    folder.mkdir(parents=True)
    for n, rel in enumerate(rels):
        buf = io.BytesIO()
        Image.open(knn / rel).convert("RGB").save(buf, format="JPEG", quality=83)
        (folder / f"copy{n}.jpg").write_bytes(buf.getvalue())
    return folder


def add_folder(gov: Governance, name: str, folder: Path) -> None:
    gov.add_source(name, path=str(folder), owner="t", legal_basis="consent", retention_days=365)


def test_person_erasure_then_their_other_photos_find_nothing(gov: Governance, knn: Path) -> None:
    assert people_found(gov, photo(knn, "obama/obama2.jpg")) == {"obama"}
    receipt = gov.erase_person([photo(knn, "obama/obama.jpg")], reason="erasure request")
    assert receipt.kind == "person" and receipt.faces_deleted == 3
    for other in ("obama/obama2.jpg", "obama/test_obama1.jpg"):
        results = gov.search(photo(knn, other), case="T-1", purpose="testing")
        held = {loc.locator for r in results for m in r.matches for loc in m.locations}
        assert held and not any(h.startswith("obama/") for h in held)
    check = gov.verify_receipt(receipt.id)
    assert check.ok and check.probe_checked and check.digest_ok, check.problems
    assert people_found(gov, photo(knn, "biden/biden.jpg")) == {"biden"}  # others untouched


def _files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def _found_in(home: Path, needles: list[bytes]) -> set[str]:
    hits = set()
    for path in _files(home):
        data = path.read_bytes()
        if any(n in data for n in needles):
            hits.add(path.name)
    return hits


def test_erased_embeddings_leave_no_bytes_in_any_file(home: Path, knn: Path) -> None:
    settings = Settings.load(home, workers=1, receipt_probe_days=0)
    with Engine.open(settings) as eng, Governance.open(eng) as gov:
        ids = [
            f.id
            for f in eng.catalog.faces(eng.catalog.live_face_ids().tolist()).values()
            if f.locations[0].locator.startswith("kit_harington/")
        ]
        needles = [v.tobytes() for v in eng.catalog.embeddings(ids).values()]
        assert len(needles) == 3
        gov.erase_person([photo(knn, "kit_harington/john2.jpeg")])
        others = [v.tobytes() for v in eng.catalog.embeddings(eng.catalog.live_face_ids()).values()]
    # The scan can see embeddings: the surviving people's are in the catalog and the index.
    assert {"catalog.db", "faces.faiss"} <= _found_in(home, others)
    assert _found_in(home, needles) == set()


def test_a_person_probe_is_kept_only_until_it_expires(home: Path, knn: Path) -> None:
    probe = photo(knn, "rose_leslie/img1.jpg")
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as gov:
        needle = [v.tobytes() for v in gov.lifecycle.probe_templates([probe])[0]]
        receipt = gov.erase_person([probe])
    assert _found_in(home, needle) == {"governance.db"}  # the receipt's re-check template
    later = datetime.now(timezone.utc) + timedelta(days=31)
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as gov:
        assert gov.gc(now=later).probes_dropped == 1
        check = gov.verify_receipt(receipt.id)
        assert check.ok and not check.probe_checked
    assert _found_in(home, needle) == set()


def test_opt_out_then_reingesting_their_photos_indexes_none_of_them(
    gov: Governance, knn: Path, tmp_path: Path
) -> None:
    result = gov.opt_out([photo(knn, "kit_harington/john1.jpeg")], reference="OPT-1")
    assert result.receipt.faces_deleted == 3
    assert [s.id for s in gov.suppressions()] == [result.suppression.id]
    kit = [
        "kit_harington/john1.jpeg",
        "kit_harington/john2.jpeg",
        "kit_harington/test_johnsnow_test1.jpg",
    ]
    folder = reencoded_copies(knn, [*kit, "biden/biden2.jpg"], tmp_path / "again")
    add_folder(gov, "again", folder)
    summary = gov.ingest("again", in_process=True)
    assert summary.faces_suppressed == 3 and summary.faces_indexed == 1  # only biden
    assert "kit_harington" not in people_found(gov, photo(knn, "kit_harington/john2.jpeg"))
    results = gov.search(photo(knn, "kit_harington/john2.jpeg"), case="T", purpose="testing")
    assert all(loc.source != "again" or m.decision == "no-match"
               for r in results for m in r.matches for loc in m.locations)  # fmt: skip


def test_search_never_returns_a_suppressed_face_and_gc_erases_it(
    gov: Governance, knn: Path
) -> None:
    # A suppression added without erasing (as after raising suppress_threshold).
    templates, _ = gov.lifecycle.probe_templates([photo(knn, "rose_leslie/img2.jpg")])
    gov.store.add_suppression(templates, actor="test", reference="late")
    assert "rose_leslie" not in people_found(gov, photo(knn, "rose_leslie/img1.jpg"), "match")
    report = gov.gc()
    assert report.suppressed_faces_deleted == 2 and report.receipt_id is not None


def test_subject_access_lists_every_holding(gov: Governance, knn: Path) -> None:
    held = gov.subject_access(
        [photo(knn, "kit_harington/test_johnsnow_test1.jpg")], reference="SAR-9"
    )
    assert sorted(h.locator for h in held) == [
        "kit_harington/john1.jpeg",
        "kit_harington/john2.jpeg",
        "kit_harington/test_johnsnow_test1.jpg",
    ]
    assert all(h.source == "knn" and h.ingested_at and h.box[2] > h.box[0] for h in held)
    entry = list(gov.audit.entries())[-1]
    assert entry.event.action == "subject-access" and entry.event.case == "SAR-9"
    assert sorted(entry.event.face_ids) == sorted(h.face_id for h in held)


def test_source_erasure_names_the_exports_and_verifies(gov: Governance, tmp_path: Path) -> None:
    export = gov.export_source("knn", tmp_path / "out" / "knn.csv", case="C-2", purpose="audit")
    assert export.rows == 12 and (tmp_path / "out" / "knn.csv").is_file()
    receipt = gov.erase_source("knn", reason="contract ended")
    assert (receipt.faces_deleted, receipt.images_deleted) == (12, 12)
    assert receipt.exports == (export.path,)
    assert gov.engine.catalog.stats()["faces"] == 0 and gov.engine.index.count() == 0
    with pytest.raises(NotFoundError):
        gov.engine.catalog.get_source("knn")
    assert gov.verify_receipt(receipt.id).ok


def test_face_and_image_erasure(gov: Governance, knn: Path) -> None:
    results = gov.search(photo(knn, "biden/biden.jpg"), case="T", purpose="testing")
    first, second = results[0].matches[:2]
    r1 = gov.erase_faces([first.face_id])
    r2 = gov.erase_images([second.image_id])
    assert (r1.faces_deleted, r1.images_deleted) == (1, 0)
    assert (r2.faces_deleted, r2.images_deleted) == (1, 1)
    assert people_found(gov, photo(knn, "biden/biden.jpg")) == set()
    assert gov.verify_receipt(r1.id).ok and gov.verify_receipt(r2.id).ok
    with pytest.raises(NotFoundError):
        gov.verify_receipt("rcp-unknown")


def test_verify_receipt_notices_the_person_coming_back(
    gov: Governance, knn: Path, tmp_path: Path
) -> None:
    receipt = gov.erase_person([photo(knn, "obama/obama.jpg")])
    add_folder(gov, "later", reencoded_copies(knn, ["obama/obama2.jpg"], tmp_path / "later"))
    gov.ingest("later", in_process=True)
    check = gov.verify_receipt(receipt.id)
    assert not check.ok and len(check.probe_matches) == 1


def test_retention_gc_erases_what_is_past_its_source_retention(gov: Governance) -> None:
    assert gov.gc().faces_deleted == 0
    report = gov.gc(now=datetime.now(timezone.utc) + timedelta(days=366))
    # 13 items: the 12 photos and SOURCE.txt, recorded as skipped (not an image) since
    # ingest stopped dropping non-images silently; its record expires with the rest.
    assert (report.items_expired, report.images_deleted, report.faces_deleted) == (13, 12, 12)
    assert report.per_source == {"knn": 13} and report.receipt_id
    assert gov.verify_receipt(report.receipt_id).ok
    assert gov.engine.catalog.stats()["faces"] == 0


def test_search_is_audited_before_results_and_fails_closed(gov: Governance, knn: Path) -> None:
    import hashlib

    probe = photo(knn, "biden/biden2.jpg")
    results = gov.search(probe, case="CASE-7", purpose="testing", top_k=3)
    entry = list(gov.audit.entries())[-1].event
    assert (entry.action, entry.case, entry.purpose) == ("search", "CASE-7", "testing")
    assert entry.probe_sha256 == hashlib.sha256(probe).hexdigest()
    assert entry.face_ids == tuple(m.face_id for r in results for m in r.matches)
    assert entry.sources == ("knn",)
    gov.audit.close()  # the log can no longer be written
    with pytest.raises(AuditError):
        gov.search(probe, case="CASE-7", purpose="testing")


def test_roles_and_purposes_are_enforced(gov: Governance, knn: Path, tmp_path: Path) -> None:
    probe = photo(knn, "biden/biden2.jpg")
    investigator = gov.acting_as(Actor("ivan", Role.INVESTIGATOR))
    with pytest.raises(PermissionDenied):
        investigator.erase_faces([1])
    with pytest.raises(PermissionDenied):
        gov.acting_as(Actor("aude", Role.AUDITOR)).search(probe, case="C", purpose="testing")
    denied = [e.event for e in gov.audit.entries() if e.event.action == "denied"]
    assert [(d.actor, d.details["action"]) for d in denied] == [
        ("ivan", "deletion"),
        ("aude", "search"),
    ]
    folder = tmp_path / "fraud"
    folder.mkdir()
    gov.add_source(
        "fraud", path=str(folder), owner="t", legal_basis="legal-obligation",
        retention_days=30, purposes=("fraud-investigation",),
    )  # fmt: skip
    with pytest.raises(SourceRefused):
        investigator.search(probe, case="C", purpose="marketing", sources=["fraud"])
    assert investigator.search(probe, case="C", purpose="Fraud-Investigation", sources=["fraud"])
    investigator.search(probe, case="C", purpose="marketing")
    last: Any = list(gov.audit.entries())[-1].event
    assert last.sources == ("knn",)  # the restricted source was left out
