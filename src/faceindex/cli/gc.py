"""faceindex gc (retention) and faceindex export (registered CSV or Parquet exports)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError
from faceindex.governance.exports import FORMATS

__all__ = ["export_app", "gc"]

export_app = typer.Typer(
    help="Registered CSV or Parquet exports (so an erasure can list the copies)."
)
FormatOpt = typer.Option("csv", "--format", help="csv, or parquet (the parquet extra)")


@handle_errors
def gc(as_json: bool = typer.Option(False, "--json"), home: HomeOpt = None) -> None:
    """Erase faces past their source's retention, any that match an opt-out, and images
    no location holds any more (their file was replaced in place)."""
    with open_governance(home) as gov:
        report = gov.gc()
    if as_json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(
        f"{report.items_expired} locations past retention; {report.images_deleted} images and "
        f"{report.faces_deleted} faces erased; {report.suppressed_faces_deleted} opted-out "
        f"faces erased; {report.unheld_images_deleted} images no location held erased; "
        f"{report.probes_dropped} receipt probes dropped"
        + (f" (receipt {report.receipt_id})" if report.receipt_id else ""),
        highlight=False,
    )
    if report.erased_again:
        console.print(
            f"  {report.erased_again} images held erased bytes again and were erased",
            highlight=False,
        )
    if report.watches_purged:
        console.print(f"  {report.watches_purged} expired watches purged", highlight=False)
    for source, n in sorted(report.per_source.items()):
        console.print(f"  {source}: {n} expired", highlight=False)


@export_app.command("source")
@handle_errors
def export_source(
    name: str = typer.Argument(..., help="a registered source"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    case: str = typer.Option("", "--case"),
    purpose: str = typer.Option("", "--purpose"),
    fmt: str = FormatOpt,
    home: HomeOpt = None,
) -> None:
    """Export a source's faces and locations (no embeddings, no thumbnails)."""
    with open_governance(home) as gov:
        rec = gov.export_source(name, out, case=case, purpose=purpose, fmt=fmt)
    console.print(f"export {rec.id}: {rec.rows} rows to {rec.path}", highlight=False)


@export_app.command("search")
@handle_errors
def export_search(
    probe: Path = typer.Argument(..., help="photo of the person to look for"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    case: str = typer.Option(..., "--case"),
    purpose: str = typer.Option(..., "--purpose"),
    top: int = typer.Option(10, "--top", min=1, max=1000),
    fmt: str = FormatOpt,
    home: HomeOpt = None,
) -> None:
    """Search (audited) and export the results."""
    if fmt not in FORMATS:  # before the search is run and audited
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        data = probe.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read probe {probe}: {exc.strerror or exc}") from exc
    with open_governance(home) as gov:
        results = gov.search(data, case=case, purpose=purpose, top_k=top)
        rec = gov.export_results(results, out, case=case, purpose=purpose, fmt=fmt)
    console.print(f"export {rec.id}: {rec.rows} rows to {rec.path}", highlight=False)


@export_app.command("list")
@handle_errors
def export_list(
    source: str | None = typer.Option(None, "--source", help="only exports of this source"),
    home: HomeOpt = None,
) -> None:
    """Every registered export."""
    with open_governance(home) as gov:
        rows = gov.exports(source)
    table = Table("export", "when", "by", "kind", "sources", "rows", "path")
    for e in rows:
        table.add_row(e.id, e.at, e.actor, e.kind, ",".join(e.sources), str(e.rows), e.path)
    console.print(table)
