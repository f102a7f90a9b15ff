"""Watchlists end to end with the real models and ../shared/faces: a watch on a person's
photo alerts when another photo of them is ingested, never for a stranger, an opted-out
face, a face from a source it does not watch, or after it expired; alerts are audited."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import InputError, NotFoundError, PermissionDenied
from faceindex.governance.roles import Actor, Role
from faceindex.governance.service import Governance

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]


@dataclass
class Home:
    engine: Engine
    gov: Governance  # the admin
    knn: Path
    root: Path

    def folder(self, name: str, *photos: str) -> Path:
        """A source folder holding these knn photos (person/file), registered as ``name``."""
        where = self.root / name
        where.mkdir()
        for rel in photos:
            (where / rel.split("/")[0]).mkdir(exist_ok=True)
            shutil.copy(self.knn / rel, where / rel)
        self.gov.add_source(
            name, path=str(where), owner="press", legal_basis="consent", retention_days=365
        )
        return where

    def photo(self, rel: str) -> bytes:
        return (self.knn / rel).read_bytes()

    def as_(self, name: str, role: Role) -> Governance:
        return self.gov.acting_as(Actor(name, role))

    def actions(self, action: str) -> list[dict[str, object]]:
        log = self.gov.audit
        entries = (log.get(seq) for seq in range(1, log.count() + 1))
        return [e.as_dict() for e in entries if e is not None and e.event.action == action]


@pytest.fixture
def home(shared_faces: Path, tmp_path: Path) -> Iterator[Home]:
    settings = Settings.load(tmp_path / "home", workers=1)
    with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
        yield Home(eng, gov, shared_faces / "face-recognition-knn", tmp_path)


def _investigator(home: Home, name: str = "ivy") -> Governance:
    return home.as_(name, Role.INVESTIGATOR)


def test_a_watch_alerts_on_another_photo_of_the_person_not_on_a_stranger(home: Home) -> None:
    home.folder("press", "biden/biden.jpg", "rose_leslie/img1.jpg")
    home.gov.ingest("press", in_process=True)
    ivy = _investigator(home)
    watch = ivy.add_watch([home.photo("obama/obama.jpg")], case="C-1", purpose="find him")
    assert watch.templates == 1 and watch.owner == "ivy" and watch.state == "live"
    assert ivy.watch_alerts() == []  # the faces already held are a search's, not a watch's

    home.folder("later", "obama/obama2.jpg", "kit_harington/john1.jpeg")
    summary = home.gov.ingest("later", in_process=True)
    assert summary.watch_alerts == 1
    (alert,) = ivy.watch_alerts(watch.id)
    assert alert.band in ("match", "possible") and alert.held
    assert [p.locator for p in alert.locations] == ["obama/obama2.jpg"]
    assert alert.locations[0].source == "later" and alert.case_reference == "C-1"
    faces = home.engine.catalog.faces([alert.face_id])
    assert faces[alert.face_id].image_id == alert.image_id
    assert alert.distance < home.engine.thresholds.match
    # N: one template against every face of the sources the watch covers.
    assert alert.compared == home.engine.catalog.count_faces()
    assert ivy.alert_thumbnail(alert.id)[:3] == b"\xff\xd8\xff"

    # An alert is audited: one watch-alert entry naming watch, face, distance and band.
    (entry,) = home.actions("watch-alert")
    assert entry["face_ids"] == [alert.face_id] and entry["case"] == "C-1"
    assert entry["details"]["watch"] == watch.id  # type: ignore[index]
    assert entry["details"]["band"] == alert.band  # type: ignore[index]
    held = home.engine.catalog.alerts([watch.id])
    assert held[0].audit_seq == entry["seq"]
    # Ingesting again finds nothing new and alerts nothing twice.
    assert home.gov.ingest("later", in_process=True).watch_alerts == 0
    assert len(home.actions("watch-alert")) == 1


def test_an_opted_out_face_is_never_alerted(home: Home) -> None:
    ivy = _investigator(home)
    watch = ivy.add_watch([home.photo("rose_leslie/img1.jpg")], case="C-2", purpose="p")
    officer = home.as_("pat", Role.PRIVACY_OFFICER)
    officer.opt_out([home.photo("rose_leslie/img1.jpg")], reference="OPT-1")
    home.folder("press", "rose_leslie/img2.jpg", "obama/obama.jpg")
    summary = home.gov.ingest("press", in_process=True)
    assert summary.faces_suppressed == 1 and summary.watch_alerts == 0
    assert ivy.watch_alerts(watch.id) == []


def test_a_face_opted_out_after_it_was_held_is_not_alerted_nor_listed(home: Home) -> None:
    """A suppression the ingest did not see (registered while it ran, or a threshold since
    raised): the watch screen checks the suppressions first, and listings withhold it."""
    ivy = _investigator(home)
    watch = ivy.add_watch([home.photo("rose_leslie/img1.jpg")], case="C-2", purpose="p")
    home.folder("press", "rose_leslie/img2.jpg")
    home.engine.ingest("press", in_process=True)  # no governance screens: held unscreened
    templates, _ = home.gov.lifecycle.probe_templates([home.photo("rose_leslie/img2.jpg")])
    home.gov.store.add_suppression(templates, actor="pat", reference="OPT-2")
    assert home.gov.watchlist.screen_new().alerts == 0
    assert ivy.watch_alerts(watch.id) == []


def test_an_expired_watch_does_not_alert_and_gc_purges_it(home: Home) -> None:
    ivy = _investigator(home)
    watch = ivy.add_watch([home.photo("obama/obama.jpg")], case="C-3", purpose="p", expires_days=1)
    assert datetime.fromisoformat(watch.expires_at) > datetime.now(timezone.utc)
    home.folder("press", "obama/obama2.jpg")
    home.engine.ingest("press", in_process=True)  # screened at the gc below, two days on
    later = datetime.now(timezone.utc) + timedelta(days=2)
    report = home.gov.gc(now=later)
    assert report.watches_purged == 1
    assert home.engine.catalog.alerts([watch.id]) == []
    (after,) = ivy.watches()
    assert after.state == "purged" and after.templates == 0
    assert home.engine.catalog.watch_templates([watch.id]) == {}
    (purge,) = home.actions("watch-purge")
    assert purge["details"]["watches"] == [watch.id]  # type: ignore[index]


def test_expiry_is_required_within_the_setting(home: Home) -> None:
    ivy = _investigator(home)
    photo = [home.photo("obama/obama.jpg")]
    default = ivy.add_watch(photo, case="C", purpose="p")
    days = datetime.fromisoformat(default.expires_at) - datetime.fromisoformat(default.created_at)
    assert days == timedelta(days=home.engine.settings.watch_default_days)
    with pytest.raises(InputError, match="1 to 365 days"):
        ivy.add_watch(photo, case="C", purpose="p", expires_days=366)
    with pytest.raises(InputError, match="case reference and a purpose"):
        ivy.add_watch(photo, case=" ", purpose="p")


def test_a_watch_on_source_a_does_not_alert_on_source_b(home: Home) -> None:
    home.folder("a", "obama/test_obama1.jpg")
    home.folder("b", "obama/obama2.jpg")
    ivy = _investigator(home)
    watch = ivy.add_watch([home.photo("obama/obama.jpg")], case="C-4", purpose="p", sources=["a"])
    assert watch.sources == ("a",)
    assert home.gov.ingest("b", in_process=True).watch_alerts == 0
    assert home.gov.ingest("a", in_process=True).watch_alerts == 1
    (alert,) = ivy.watch_alerts(watch.id)
    assert [p.source for p in alert.locations] == ["a"]
    assert alert.compared == home.engine.catalog.count_faces_in_sources(["a"])
    with pytest.raises(InputError, match="no source named"):
        ivy.add_watch([home.photo("obama/obama.jpg")], case="C", purpose="p", sources=["nope"])


def test_owners_see_their_own_watches_auditors_all(home: Home) -> None:
    ivy, eve = _investigator(home, "ivy"), _investigator(home, "eve")
    mine = ivy.add_watch([home.photo("obama/obama.jpg")], case="C-5", purpose="p")
    home.folder("press", "obama/obama2.jpg")
    home.gov.ingest("press", in_process=True)
    assert [w.id for w in eve.watches()] == [] and eve.watch_alerts() == []
    with pytest.raises(NotFoundError):
        eve.watch_alerts(mine.id)
    with pytest.raises(NotFoundError):
        eve.remove_watch(mine.id)
    auditor = home.as_("aud", Role.AUDITOR)
    assert [w.id for w in auditor.watches()] == [mine.id]
    assert len(auditor.watch_alerts()) == 1
    with pytest.raises(PermissionDenied):
        auditor.add_watch([home.photo("obama/obama.jpg")], case="C", purpose="p")
    with pytest.raises(PermissionDenied):
        auditor.remove_watch(mine.id)
    ended = ivy.remove_watch(mine.id)
    assert ended.state == "removed" and ended.templates == 0
    assert len(ivy.watch_alerts(mine.id)) == 1  # the alerts stay: evidence for the case
    with pytest.raises(InputError, match="already ended"):
        ivy.remove_watch(mine.id)
    assert home.actions("watch-remove")[0]["actor"] == "ivy"


def test_a_watch_keeps_no_photo_only_its_hash(home: Home) -> None:
    import hashlib

    photo = home.photo("obama/obama.jpg")
    watch = _investigator(home).add_watch([photo], case="C", purpose="p")
    assert watch.probe_sha256 == hashlib.sha256(photo).hexdigest()
    assert not (home.engine.settings.home / "probes").exists()
    (vec,) = home.engine.catalog.watch_templates([watch.id])[watch.id].vectors
    assert vec.shape == (home.engine.pack.dim,) and np.isfinite(vec).all()


def test_alerts_are_raised_while_the_ingest_runs(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each committed batch, not only at the ingest's end (a long ingest alerts early)."""
    import faceindex.governance.service as service

    monkeypatch.setattr(service, "SCREEN_EVERY_S", 0.0)
    ivy = _investigator(home)
    ivy.add_watch([home.photo("obama/obama.jpg")], case="C-6", purpose="p")
    home.folder("press", "biden/biden.jpg", "obama/obama2.jpg", "rose_leslie/img1.jpg")
    seen: list[tuple[int, int]] = []  # (images done, alerts held) at each progress report

    def progress(p: object) -> None:
        seen.append((p.done, len(home.engine.catalog.alerts())))  # type: ignore[attr-defined]

    summary = home.gov.ingest("press", progress=progress, in_process=True)
    assert summary.watch_alerts == 1
    assert len(seen) >= 2 and seen[0][0] < 3  # several batches
    assert any(alerts == 1 for done, alerts in seen if done < 3), seen


def test_an_alert_left_unaudited_by_a_dead_screen_is_audited_by_the_next(home: Home) -> None:
    from faceindex.catalog.watch_rows import NewAlert
    from faceindex.types import Provenance

    watch = _investigator(home).add_watch([home.photo("obama/obama.jpg")], case="C", purpose="p")
    (made,) = home.engine.catalog.add_alerts(
        [
            NewAlert(
                watch.id, 77, 7, "ab" * 32, (Provenance("s", "x.jpg", ""),), 0.3, "match", 0.0, 5
            )
        ]
    )
    assert made.audit_seq is None and home.actions("watch-alert") == []
    home.gov.watchlist.screen_new()
    (entry,) = home.actions("watch-alert")
    assert entry["face_ids"] == [77]
    assert home.engine.catalog.alerts(ids=[made.id])[0].audit_seq == entry["seq"]


def test_a_watch_on_a_catalogued_person_alerts_on_their_next_photo(home: Home) -> None:
    """A person (persons build) watched by id: its faces' descriptors, no photo sent."""
    home.folder("press", "obama/obama.jpg", "biden/biden.jpg")
    home.gov.ingest("press", in_process=True)
    home.gov.persons.build()
    (obama,) = [
        v.person.id
        for v in home.gov.persons.list()
        if any(p.locator == "obama/obama.jpg" for f in v.faces for p in f.locations)
    ]
    ivy = _investigator(home)
    with pytest.raises(InputError):  # photos or a person, not both
        ivy.add_watch([home.photo("obama/obama2.jpg")], person=obama, case="C", purpose="p")
    watch = ivy.add_watch(person=obama, case="C-9", purpose="find him")
    assert watch.kind == "person" and watch.person_id == obama and watch.templates == 1

    home.folder("later", "obama/obama2.jpg", "kit_harington/john1.jpeg")
    assert home.gov.ingest("later", in_process=True).watch_alerts == 1
    (alert,) = ivy.watch_alerts(watch.id)
    assert [p.locator for p in alert.locations] == ["obama/obama2.jpg"]
    (added,) = home.actions("watch-add")
    assert added["details"]["kind"] == "person"  # type: ignore[index]
