"""faceindex review SEARCH_ID FACE_ID DECISION, and faceindex case show CASE_REF."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance
from faceindex.search.case_result import case_dict, review_dict
from faceindex.types import REVIEW_DECISIONS

__all__ = ["case_app", "review"]

case_app = typer.Typer(help="A case's searches, candidates and review decisions.")


@handle_errors
def review(
    search_id: str = typer.Argument(..., help="the search's id (search --json: search_id)"),
    face_id: int = typer.Argument(..., min=1, help="a candidate face the search returned"),
    decision: str = typer.Argument(..., help=" | ".join(REVIEW_DECISIONS)),
    note: str = typer.Option("", "--note", help="why (one line)"),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Record a review decision on one candidate of a search (audited)."""
    with open_governance(home) as gov:
        r = gov.review(search_id, face_id, decision, note=note)
    if as_json:
        console.print_json(json.dumps(review_dict(r)))
    else:
        console.print(
            f"face {r.face_id} of search {r.search_id} ({r.case_reference}): {r.decision}",
            highlight=False,
        )


@case_app.command("show")
@handle_errors
def show(
    case_ref: str = typer.Argument(..., help="the case reference"),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """The case's searches (from the audit log), its candidates and their decisions."""
    with open_governance(home) as gov:
        view = gov.case(case_ref)
    if as_json:
        console.print_json(json.dumps(case_dict(view)))
        return
    searches = Table(
        "search", "when", "actor", "purpose", "sources", "candidates", title="searches"
    )
    for s in view.searches:
        searches.add_row(
            s.search_id or "-", s.at[:19], s.actor, s.purpose, ", ".join(s.sources) or "all",
            str(s.candidates) if s.outcome == "ok" else s.outcome,
        )  # fmt: skip
    console.print(searches)
    if view.verifications:
        checks = Table("when", "actor", "purpose", "decision", "distance", title="verifications")
        for v in view.verifications:
            distance = f"{v.distance:.3f}" if v.distance is not None else "-"
            checks.add_row(v.at[:19], v.actor, v.purpose, v.decision or v.outcome, distance)
        console.print(checks)
    candidates = Table("face", "where", "searches", "decision", "by", "note", title="candidates")
    for c in view.candidates:
        r = c.review
        candidates.add_row(
            f"{c.face_id}" + ("" if c.held else " (erased)"),
            "\n".join(f"{p.source}:{p.locator}" for p in c.locations) or "-",
            str(len(c.search_ids)),
            r.decision if r else "-", r.reviewer if r else "", r.note if r else "",
        )  # fmt: skip
    console.print(candidates)
