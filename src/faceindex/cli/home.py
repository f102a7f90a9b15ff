"""faceindex init / stats / failures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, open_engine, settings_for

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("stats")(stats)
    app.command("failures")(failures)


@handle_errors
def init(
    home: HomeOpt = None,
    catalog: str | None = typer.Option(
        None, "--catalog", help="catalog URL, kept in <home>/config.toml (default: SQLite)"
    ),
    index: str | None = typer.Option(
        None, "--index", help="index URL, kept in <home>/config.toml (default: FAISS)"
    ),
    model: str | None = typer.Option(
        None, "--model", help="model pack (name or directory), recorded in <home>/model.json"
    ),
) -> None:
    """Create an engine home: catalog, vector index and the model it is built with."""
    settings = settings_for(home)
    if catalog or index:
        _remember(settings.home, catalog_url=catalog, index_url=index)
    if model and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    with open_engine(home, create=True, model=model) as engine:
        console.print(f"engine home ready at [bold]{engine.settings.home}[/bold]")
        console.print(f"  catalog {engine.settings.resolved_catalog_url}", highlight=False)
        console.print(f"  index   {engine.settings.resolved_index_url}", highlight=False)
        console.print(f"  model   {engine.pack.identity.describe()}", highlight=False)


def _remember(home: Path, **urls: str | None) -> None:
    """Write backend URLs into <home>/config.toml so every later command uses them."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "config.toml"
    lines = [
        ln
        for ln in (cfg.read_text().splitlines() if cfg.exists() else [])
        if not any(ln.split("=")[0].strip() == k for k, v in urls.items() if v)
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in urls.items() if v]
    cfg.write_text("\n".join(lines) + "\n")


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
    skipped: bool = typer.Option(
        False, "--skipped", help="entries listed but not read (not images, links, FIFOs)"
    ),
) -> None:
    """Items that could not be ingested, with the reason (--skipped: those not read)."""
    with open_engine(home) as engine:
        sid = engine.catalog.get_source(source).id if source else None
        rows = engine.catalog.failures(sid, skipped=skipped)
    table = Table("source", "item", "reason")
    for row in rows:
        table.add_row(*(escape(cell or "") for cell in row))  # a file name is not markup
    console.print(table)
