"""faceindex init / stats / failures."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, open_engine

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("stats")(stats)
    app.command("failures")(failures)


@handle_errors
def init(home: HomeOpt = None) -> None:
    """Create an engine home: catalog and vector index."""
    with open_engine(home, create=True) as engine:
        console.print(f"engine home ready at [bold]{engine.settings.home}[/bold]")


@handle_errors
def stats(home: HomeOpt = None, as_json: bool = typer.Option(False, "--json")) -> None:
    """Counts of sources, images, faces and index vectors."""
    with open_engine(home) as engine:
        data = engine.stats()
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table(show_header=False)
    for key, value in data.items():
        table.add_row(key, str(value))
    console.print(table)


@handle_errors
def failures(
    home: HomeOpt = None,
    source: str | None = typer.Option(None, help="only this source"),
) -> None:
    """Items that could not be ingested, with the reason."""
    with open_engine(home) as engine:
        sid = engine.catalog.get_source(source).id if source else None
        rows = engine.catalog.failures(sid)
    table = Table("source", "item", "reason")
    for row in rows:
        table.add_row(*row)
    console.print(table)
