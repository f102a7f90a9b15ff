"""The casework rules at the Governance facade, fast (no face model: the searches are
written to the real audit log as Governance.search writes them): who may review and see a
case, what each refusal leaves in the audit log, and what the case view holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faceindex.config import Settings
from faceindex.errors import InputError, NotFoundError, PermissionDenied
from faceindex.governance.casework import new_search_id
from faceindex.governance.roles import Actor, Role

pytestmark = pytest.mark.integration


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Any]:
    from faceindex.engine import Engine
    from faceindex.governance.service import Governance

    engine = Engine.open(Settings.load(tmp_path / "home", workers=1), create=True)
    with engine, Governance.open(engine, Actor("inv-1", Role.INVESTIGATOR)) as g:
        yield g


def searched(gov: Any, case: str, faces: tuple[int, ...], actor: str = "inv-1") -> str:
    """What Governance.search writes for a search that returned ``faces``."""
    sid = new_search_id()
    gov.acting_as(Actor(actor, Role.INVESTIGATOR)).acting.record(
        "search", case=case, purpose="identify", sources=("press",), face_ids=faces,
        details={"search_id": sid},
    )  # fmt: skip
    return sid


def denied(gov: Any) -> list[tuple[str, str, str]]:
    return [
        (e.event.actor, e.event.details["action"], e.event.case)
        for e in gov.audit.entries()
        if e.event.action == "denied"
    ]


def test_a_reviewer_on_the_case_decides_and_the_view_shows_it(gov: Any) -> None:
    sid = searched(gov, "C-1", (5, 6))
    later = searched(gov, "C-1", (6,), actor="inv-2")  # a colleague joins the case
    r = gov.review(sid, 5, "confirmed", note="  same scar  ")
    assert (r.case_reference, r.reviewer, r.role, r.note) == (
        "C-1",
        "inv-1",
        "investigator",
        "same scar",
    )
    colleague = gov.acting_as(Actor("inv-2", Role.INVESTIGATOR))
    colleague.review(later, 6, "rejected")
    assert {f: d.decision for f, d in colleague.decisions("C-1", [5, 6, 7]).items()} == {
        5: "confirmed", 6: "rejected",
    }  # fmt: skip
    view = gov.case("C-1")
    assert [s.search_id for s in view.searches] == [sid, later]
    assert [(c.face_id, c.search_ids, c.held) for c in view.candidates] == [
        (5, (sid,), False), (6, (sid, later), False),  # no such faces in this catalog
    ]  # fmt: skip
    assert view.candidates[0].review == r
    actions = [e.event.action for e in gov.audit.entries()]
    assert actions.count("review") == 2 and actions[-1] == "case-view"


def test_refusals_are_audited(gov: Any) -> None:
    sid = searched(gov, "C-2", (5,))
    auditor = gov.acting_as(Actor("aud-1", Role.AUDITOR))
    with pytest.raises(PermissionDenied):
        auditor.review(sid, 5, "confirmed")
    assert auditor.case("C-2").searches[0].search_id == sid  # read-audit sees every case
    stranger = gov.acting_as(Actor("inv-9", Role.INVESTIGATOR))
    with pytest.raises(NotFoundError, match="no case"):
        stranger.case("C-2")
    with pytest.raises(NotFoundError, match="no search"):
        stranger.review(sid, 5, "rejected")
    with pytest.raises(PermissionDenied):
        gov.acting_as(Actor("po-1", Role.PRIVACY_OFFICER)).verify(
            b"a", b"b", case="C-2", purpose="x"
        )
    assert denied(gov) == [
        ("aud-1", "review", ""), ("inv-9", "case-view", "C-2"), ("inv-9", "review", "C-2"),
        ("po-1", "verify", "C-2"),
    ]  # fmt: skip
    assert gov.engine.catalog.reviews("C-2") == []


def test_what_a_review_must_name(gov: Any) -> None:
    sid = searched(gov, "C-3", (5,))
    with pytest.raises(NotFoundError, match="not among the candidates"):
        gov.review(sid, 6, "confirmed")
    with pytest.raises(NotFoundError, match="no search"):
        gov.review(new_search_id(), 5, "confirmed")
    with pytest.raises(InputError, match="24 hex digits"):
        gov.review("xyz", 5, "confirmed")
    with pytest.raises(InputError, match="one of"):
        gov.review(sid, 5, "probably")
    with pytest.raises(InputError, match="one line"):
        gov.review(sid, 5, "rejected", note="two\nlines")
    with pytest.raises(InputError, match="case reference and a purpose"):
        gov.verify(b"a", b"b", case=" ", purpose="x")
    with pytest.raises(NotFoundError, match="no case"):
        gov.case("C-EMPTY")
    assert gov.engine.catalog.reviews("C-3") == []
    assert not [e for e in gov.audit.entries() if e.event.action == "review"]
