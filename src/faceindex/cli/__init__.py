"""The faceindex command line: one module per command group."""

from __future__ import annotations

import typer

from faceindex.cli import home, sources
from faceindex.cli.ingest import ingest
from faceindex.cli.search import search

__all__ = ["app", "main"]

app = typer.Typer(
    help="faceindex: lawful face search over the collections you are entitled to hold.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
home.register(app)
app.add_typer(sources.app, name="sources")
app.command("ingest")(ingest)
app.command("search")(search)


def main() -> None:
    app()
