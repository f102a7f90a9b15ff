"""faceindex watch add / list / alerts / remove / purge: watches on new faces and their alerts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance, read_photos

__all__ = ["app"]

app = typer.Typer(
    help="Watchlists: alert when a new photo of a person is ingested (case, purpose, expiry)."
)


def _sources(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()] or None


@app.command("add")
@handle_errors
def add(
    photos: list[Path] = typer.Argument(None, help="one or more photos of the person"),
    case: str = typer.Option(..., "--case", help="the case reference"),
    purpose: str = typer.Option(..., "--purpose", help="why this person is watched for"),
    expires_days: int | None = typer.Option(
        None, "--expires-days", help="days until it expires (default: watch_default_days)"
    ),
    sources: str | None = typer.Option(
        None, "--sources", help="comma-separated sources to watch (default: all the purpose allows)"
    ),
    person: int | None = typer.Option(
        None, "--person", help="watch for a catalogued person (faceindex persons list), no photo"
    ),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Watch for the person (the largest face of each photo; the photos are not kept), or
    for a catalogued person (--person: its best faces)."""
    with open_governance(home) as gov:
        w = gov.add_watch(
            read_photos(photos or []),
            person=person,
            case=case,
            purpose=purpose,
            expires_days=expires_days,
            sources=_sources(sources),
        )
    if as_json:
        console.print_json(json.dumps(asdict(w)))
        return
    scope = ", ".join(w.sources) or "every source the purpose allows"
    console.print(
        f"watch [bold]{w.id}[/bold] for case {escape(w.case_reference)}: {w.templates} "
        f"face(s), expires {w.expires_at}, watching {escape(scope)}",
        highlight=False,
    )


@app.command("list")
@handle_errors
def list_(as_json: bool = typer.Option(False, "--json"), home: HomeOpt = None) -> None:
    """Your watches (every watch for an auditor), never their face templates."""
    with open_governance(home) as gov:
        rows = gov.watches()
    if as_json:
        console.print_json(json.dumps([asdict(w) for w in rows]))
        return
    table = Table("watch", "state", "owner", "case", "purpose", "faces", "expires", "sources")
    for w in rows:
        table.add_row(
            str(w.id), w.state, escape(w.owner), escape(w.case_reference), escape(w.purpose),
            str(w.templates), w.expires_at, escape(", ".join(w.sources) or "(all allowed)"),
        )  # fmt: skip
    console.print(table)


def _alert_json(a: Any) -> dict[str, Any]:
    data = asdict(a)
    data["locations"] = [asdict(p) for p in a.locations]
    return data


@app.command("alerts")
@handle_errors
def alerts(
    watch: int | None = typer.Argument(None, help="one watch's alerts (default: all yours)"),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Alerts: new faces that came close to a watch, with where they were found."""
    with open_governance(home) as gov:
        rows = gov.watch_alerts(watch)
    if as_json:
        console.print_json(json.dumps([_alert_json(a) for a in rows]))
        return
    table = Table("alert", "watch", "case", "band", "distance", "face", "found at", "when")
    for a in rows:
        where = "; ".join(f"{p.source}:{p.locator}" for p in a.locations)
        table.add_row(
            str(a.id), str(a.watch_id), escape(a.case_reference), a.band, f"{a.distance:.3f}",
            str(a.face_id) + ("" if a.held else " (erased)"), escape(where), a.created_at,
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} alerts", highlight=False)


@app.command("remove")
@handle_errors
def remove(watch: int = typer.Argument(..., help="the watch id"), home: HomeOpt = None) -> None:
    """End a watch now: its face templates are deleted; its alerts stay."""
    with open_governance(home) as gov:
        w = gov.remove_watch(watch)
    console.print(f"watch {w.id} removed ({w.ended_at})", highlight=False)


@app.command("purge")
@handle_errors
def purge(home: HomeOpt = None) -> None:
    """Purge the expired watches (faceindex gc does it too)."""
    with open_governance(home) as gov:
        ids = gov.purge_watches()
    console.print(f"{len(ids)} expired watches purged {ids or ''}", highlight=False)
