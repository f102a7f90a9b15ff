"""The faceindex command line: one module per command group."""

from __future__ import annotations

import os

import typer

from faceindex.cli import audit, erase, evaluate, gc, home, optout, sources, users, watch
from faceindex.cli import index as index_cli
from faceindex.cli import persons as persons_cli
from faceindex.cli.ingest import ingest
from faceindex.cli.reembed import reembed
from faceindex.cli.review import case_app, review
from faceindex.cli.search import search
from faceindex.cli.serve import serve
from faceindex.cli.verify import verify

__all__ = ["app", "main"]

app = typer.Typer(
    help="faceindex: lawful face search over the collections you are entitled to hold.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    catalog: str | None = typer.Option(
        None, "--catalog", help="catalog URL for this command (sqlite:///..., postgresql://...)"
    ),
    index: str | None = typer.Option(
        None, "--index", help="index URL for this command (faiss:///..., memory://, milvus://...)"
    ),
) -> None:
    """faceindex: lawful face search over the collections you are entitled to hold."""
    # The CLI is the edge where settings are built: pass the URLs on as FACEINDEX_* settings.
    if catalog:
        os.environ["FACEINDEX_CATALOG_URL"] = catalog
    if index:
        os.environ["FACEINDEX_INDEX_URL"] = index


home.register(app)
app.add_typer(sources.app, name="sources")
app.add_typer(evaluate.app, name="eval")
app.command("ingest")(ingest)
app.command("search")(search)
app.add_typer(users.app, name="users")
app.command("serve")(serve)
app.add_typer(erase.app, name="erase")
app.add_typer(optout.app, name="optout")
app.command("access")(optout.access)
app.command("gc")(gc.gc)
app.add_typer(gc.export_app, name="export")
app.add_typer(audit.app, name="audit")
app.add_typer(index_cli.app, name="index")
app.command("reembed")(reembed)
app.add_typer(persons_cli.app, name="persons")
app.add_typer(watch.app, name="watch")
app.command("verify")(verify)
app.command("review")(review)
app.add_typer(case_app, name="case")


def main() -> None:
    app()
