"""faceindex search PROBE --case --purpose."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.errors import EXIT_NO_MATCH
from faceindex.cli.governed import open_governance, read_photos
from faceindex.errors import InputError
from faceindex.governance.casework import new_search_id
from faceindex.search.result import search_dict
from faceindex.search.scoring import one_in
from faceindex.search.template import FUSIONS
from faceindex.types import Review, SearchResult

__all__ = ["search"]


@handle_errors
def search(
    probes: list[Path] = typer.Argument(
        None, help="photo of the person to look for (several with --same-person)"
    ),
    case: str = typer.Option(..., "--case", help="case reference this search is for"),
    purpose: str = typer.Option(..., "--purpose", help="why this search is made"),
    top: int = typer.Option(10, "--top", min=1, max=1000, help="matches per probe face"),
    largest: bool = typer.Option(False, "--largest", help="only the largest face in the probe"),
    source: list[str] = typer.Option([], "--source", help="search only these sources"),
    match_bound: float | None = typer.Option(
        None,
        "--match-bound",
        min=1e-9,
        max=0.5,
        help="call a match only below this chance of any stranger this close (default 0.01)",
    ),
    same_person: bool = typer.Option(
        False, "--same-person", help="the photos show one person: search them as one template"
    ),
    person: int | None = typer.Option(
        None, "--person", min=1, help="search by a person's faces (see `persons list`)"
    ),
    fusion: str | None = typer.Option(
        None, "--fusion", help="template ranking: best-of or mean (default: the setting)"
    ),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Search the gallery for every face in PROBE. Exit 0 if a match is found, 1 if none.

    Several photos of one person (--same-person), or a person (--person ID), are searched
    as one template: one result list, with bands corrected for the several comparisons."""
    if not case.strip() or not purpose.strip():
        raise InputError("a search needs a case reference and a purpose")
    probes = probes or []
    if fusion is not None and fusion not in FUSIONS:
        raise InputError(f"--fusion is one of {', '.join(FUSIONS)}, not {fusion!r}")
    if person is not None and probes:
        raise InputError("search by photos or by --person, not both")
    if person is None and not probes:
        raise InputError("give a probe photo (or --person ID)")
    if len(probes) > 1 and not same_person:
        raise InputError("several probe photos are searched together only with --same-person")
    photos = read_photos(probes)
    search_id = new_search_id()  # for `faceindex review SEARCH_ID FACE_ID ...`
    with open_governance(home) as gov:  # audited before results are shown; fails closed
        if person is not None or same_person:
            results = gov.search_template(
                photos,
                person=person,
                case=case,
                purpose=purpose,
                fusion=fusion,  # checked against FUSIONS above
                top_k=top,
                sources=source or None,
                match_bound=match_bound,
                name_search=lambda _shown: search_id,
            )
        else:
            results = gov.search(
                photos[0],
                case=case,
                purpose=purpose,
                top_k=top,
                largest=largest,
                sources=source or None,
                match_bound=match_bound,
                name_search=lambda _shown: search_id,
            )
        reviews = gov.decisions(case, [m.face_id for r in results for m in r.matches])
    if as_json:
        body = search_dict(
            results, case_reference=case, purpose=purpose, search_id=search_id, reviews=reviews
        )
        console.print_json(json.dumps(body))
    else:
        console.print(f"search {search_id} for case {case}", highlight=False)
        _print(results, reviews)
    if not any(m.decision == "match" for r in results for m in r.matches):
        raise typer.Exit(EXIT_NO_MATCH)


def _print(results: list[SearchResult], reviews: Mapping[int, Review] | None = None) -> None:
    decided = reviews or {}
    for n, r in enumerate(results, 1):
        box = r.probe.bbox.as_list()
        console.print(
            f"[bold]probe face {n}[/bold] at {box} (quality {r.probe.quality:.2f}); "
            f"{r.gallery_size:,} faces searched",
            soft_wrap=True,
        )
        for warning in r.probe.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
        table = Table(
            "#", "face", "decision", "dist", "quality", "stranger this close", "image", "seen",
            "review",
        )  # fmt: skip
        for rank, m in enumerate(r.matches, 1):
            colour = {"match": "green", "possible": "yellow"}.get(m.decision, "dim")
            where = "\n".join(f"{p.source}:{p.locator}" for p in m.locations) or "-"
            ingested = m.locations[0].ingested_at[:10] if m.locations else "-"
            review = decided.get(m.face_id)
            table.add_row(
                str(rank),
                str(m.face_id),
                f"[{colour}]{m.decision}[/{colour}]",
                f"{m.distance:.3f}",
                f"{m.quality:.2f}",
                one_in(m.stranger_chance),
                where,
                ingested,
                f"{review.decision} ({review.reviewer})" if review else "-",
            )
        console.print(table)
        console.print(
            "stranger this close: how many searches of a gallery this size show a stranger at "
            f"least this close; 'match' needs fewer than 1 in {round(1 / r.match_bound):,} and "
            "both faces of good quality, 'possible' is a candidate for a person to check.",
            soft_wrap=True,
        )
