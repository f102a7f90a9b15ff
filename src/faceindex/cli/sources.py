"""faceindex sources add / list."""

from __future__ import annotations

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, open_engine
from faceindex.cli.governed import open_governance

__all__ = ["app"]

app = typer.Typer(help="Register and list image sources (each with owner, legal basis, retention).")


@app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="a short name, e.g. 'archive'"),
    path: str = typer.Option(
        ..., "--path", help="folder, zip/tar archive, or a text file listing image URLs"
    ),
    owner: str = typer.Option(..., help="who is responsible for this collection"),
    legal_basis: str = typer.Option(
        ...,
        help="consent, contract, legal-obligation, vital-interests, public-task, "
        "legitimate-interest or law-enforcement",
    ),
    retention_days: int = typer.Option(..., help="how long its faces may be kept"),
    legal_reference: str = typer.Option("", help="the contract, statute or warrant"),
    purpose: list[str] = typer.Option([], "--purpose", help="allowed purpose (repeatable)"),
    jurisdiction: str = typer.Option("", help="e.g. EU, UK, CA"),
    home: HomeOpt = None,
) -> None:
    """Register a source. Ingest refuses anything that is not from a registered source."""
    with open_governance(home) as gov:  # audited as a configuration change
        rec = gov.add_source(
            name,
            path=str(path),
            owner=owner,
            legal_basis=legal_basis,
            retention_days=retention_days,
            legal_reference=legal_reference,
            purposes=tuple(purpose),
            jurisdiction=jurisdiction,
        )
    console.print(f"source [bold]{rec.name}[/bold] registered ({rec.kind}: {rec.uri})")


@app.command("list")
@handle_errors
def list_(home: HomeOpt = None) -> None:
    """Every registered source."""
    with open_engine(home) as engine:
        rows = engine.catalog.list_sources()
    table = Table("name", "kind", "location", "owner", "legal basis", "retention (days)")
    for r in rows:
        table.add_row(r.name, r.kind, r.uri, r.owner, r.legal_basis, str(r.retention_days))
    console.print(table)
