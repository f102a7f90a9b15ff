"""faceindex optout add / list; faceindex access (subject access)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance, read_photos

__all__ = ["access", "app"]

app = typer.Typer(help="Opt-out by face: a person's photos become a suppression entry.")


@app.command("add")
@handle_errors
def add(
    photos: list[Path] = typer.Argument(..., help="one or more photos of the person"),
    reference: str = typer.Option(..., "--reference", help="the opt-out request reference"),
    home: HomeOpt = None,
) -> None:
    """Suppress a person: erase matching faces now, skip them in every later ingest."""
    with open_governance(home) as gov:
        result = gov.opt_out(read_photos(photos), reference=reference)
    r = result.receipt
    console.print(
        f"suppression [bold]{result.suppression.id}[/bold] registered; "
        f"{r.faces_deleted} matching faces erased (receipt {r.id})",
        highlight=False,
    )


@app.command("list")
@handle_errors
def list_(home: HomeOpt = None) -> None:
    """Registered suppressions (never their templates)."""
    with open_governance(home) as gov:
        rows = gov.suppressions()
    table = Table("suppression", "created", "by", "reference", "photos")
    for s in rows:
        table.add_row(s.id, s.created_at, s.actor, s.reference, str(s.templates))
    console.print(table)


@handle_errors
def access(
    photos: list[Path] = typer.Argument(..., help="one or more photos of the person"),
    reference: str = typer.Option(..., "--reference", help="the subject access request"),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Subject access: everything held that matches the person (source, item, date, box)."""
    with open_governance(home) as gov:
        held = gov.subject_access(read_photos(photos), reference=reference)
    if as_json:
        console.print_json(json.dumps([asdict(h) for h in held]))
        return
    table = Table("face", "image", "distance", "source", "item", "ingested", "box")
    for h in held:
        table.add_row(
            str(h.face_id), str(h.image_id), f"{h.distance:.3f}", h.source, h.locator,
            h.ingested_at, str(list(h.box)),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(held)} holdings", highlight=False)
