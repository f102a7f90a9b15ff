"""faceindex ingest SOURCE."""

from __future__ import annotations

import json

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance
from faceindex.pipeline.runner import Progress as IngestProgress

__all__ = ["ingest"]


@handle_errors
def ingest(
    source: str = typer.Argument(..., help="a registered source name"),
    workers: int | None = typer.Option(None, help="processes (default: one per core)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    home: HomeOpt = None,
) -> None:
    """Find, embed and index every face in a source. Resumable: rerun to continue."""
    with open_governance(home, workers=workers) as gov:  # audited; opt-outs screened
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
            transient=False,
        )
        with bar:
            task = bar.add_task(f"ingest {source}", total=None, rate="")

            def on_progress(p: IngestProgress) -> None:
                secs = max(p.elapsed, 1e-9)
                bar.update(
                    task,
                    total=p.total,
                    completed=p.done,
                    rate=f"{p.done / secs:.1f} img/s  {p.faces / secs:.1f} faces/s"
                    f"  failed {p.failed}",
                )

            summary = gov.ingest(source, progress=on_progress)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "images_seen": summary.images_seen,
                    "images_new": summary.images_new,
                    "images_skipped": summary.images_skipped,
                    "faces_indexed": summary.faces_indexed,
                    "faces_suppressed": summary.faces_suppressed,
                    "faces_below_quality": summary.faces_below_quality,
                    "failed": [{"item": i, "reason": r} for i, r in summary.failed],
                    "skipped": [{"item": i, "reason": r} for i, r in summary.skipped],
                    "seconds": round(summary.seconds, 2),
                }
            )
        )
        return
    secs = max(summary.seconds, 1e-9)
    console.print(
        f"{summary.images_new} images ingested, {summary.faces_indexed} faces indexed, "
        f"{summary.images_skipped} already held, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f}s ({summary.images_new / secs:.1f} img/s, "
        f"{summary.faces_indexed / secs:.1f} faces/s)"
    )
    if summary.faces_suppressed or summary.faces_below_quality:
        console.print(
            f"  {summary.faces_suppressed} faces skipped by opt-out, "
            f"{summary.faces_below_quality} below the quality floor"
        )
    for item, reason in summary.skipped[:20]:
        console.print(f"  [yellow]skipped[/yellow] {item}: {reason}", highlight=False)
    for item, reason in summary.failed[:20]:
        console.print(f"  [yellow]failed[/yellow] {item}: {reason}", highlight=False)
    if len(summary.failed) > 20:
        console.print(f"  ... and {len(summary.failed) - 20} more: faceindex failures")
