"""faceindex ingest SOURCE."""

from __future__ import annotations

import json
import logging
from enum import Enum

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faceindex.cli.common import HomeOpt, console, err_console, handle_errors
from faceindex.cli.errors import EXIT_INGEST_INCOMPLETE
from faceindex.cli.governed import open_governance
from faceindex.errors import FaceIndexError, InputError
from faceindex.pipeline.runner import Progress as IngestProgress
from faceindex.types import IngestSummary

__all__ = ["ingest"]

log = logging.getLogger(__name__)


class Runner(str, Enum):
    LOCAL = "local"
    RAY = "ray"


SHOWN = 20  # failed or skipped items listed after a run; the rest: faceindex failures


@handle_errors
def ingest(
    source: str = typer.Argument(..., help="a registered source name"),
    workers: int | None = typer.Option(
        None, help="processes, or Ray actors (default: one per core, or per cluster CPU)"
    ),
    runner: Runner | None = typer.Option(
        None, help="local worker processes, or Ray actors (pip install 'faceindex[ray]')"
    ),
    address: str | None = typer.Option(
        None, help="with --runner ray: auto, host:port or ray://host:port (default: a local Ray)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    home: HomeOpt = None,
) -> None:
    """Find, embed and index every face in a source. Resumable: rerun to continue.

    Exits 7 when some items could not be ingested (each is recorded with its reason)."""
    try:
        summary = _run(source, as_json, home, workers=workers, runner=runner, address=address)
    except (FaceIndexError, typer.Exit):
        raise
    except Exception as exc:  # a bug: one line for the user, the stack for the debug log
        log.debug("ingest of %s stopped", source, exc_info=True)
        err_console.print(
            f"[red]error:[/red] ingest stopped by an internal error ({type(exc).__name__}: "
            f"{escape(str(exc))[:300]}); what was committed is kept, rerun to resume",
            highlight=False,
        )
        raise typer.Exit(EXIT_INGEST_INCOMPLETE) from None
    if as_json:
        _print_json(summary)
    else:
        _print_text(summary)
    if summary.failed:
        raise typer.Exit(EXIT_INGEST_INCOMPLETE)


def _run(
    source: str,
    as_json: bool,
    home: HomeOpt,
    *,
    workers: int | None,
    runner: Runner | None,
    address: str | None,
) -> IngestSummary:
    if address is not None and runner is not Runner.RAY:
        raise InputError("--address is a Ray cluster's: give it with --runner ray")
    overrides = {
        "workers": workers,
        "runner": None if runner is None else runner.value,
        "ray_address": address,
    }
    with open_governance(home, **overrides) as gov:  # audited; opt-outs screened
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
            task = bar.add_task(f"ingest {escape(source)}", total=None, rate="")

            def on_progress(p: IngestProgress) -> None:
                secs = max(p.elapsed, 1e-9)
                bar.update(
                    task,
                    total=p.total,
                    completed=p.done,
                    rate=f"{p.done / secs:.1f} img/s  {p.faces / secs:.1f} faces/s"
                    f"  failed {p.failed}",
                )

            return gov.ingest(source, progress=on_progress)


def _print_json(summary: IngestSummary) -> None:
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
                "images_unheld": summary.images_unheld,
                "watch_alerts": summary.watch_alerts,
                "images_retired": summary.images_retired,
                "retired_receipt": summary.retired_receipt,
                "seconds": round(summary.seconds, 2),
            }
        )
    )


def _print_text(summary: IngestSummary) -> None:
    secs = max(summary.seconds, 1e-9)
    console.print(
        f"{summary.images_new} images ingested, {summary.faces_indexed} faces indexed, "
        f"{summary.images_skipped} already held, {len(summary.failed)} failed, "
        f"{len(summary.skipped)} skipped "
        f"in {summary.seconds:.1f}s ({summary.images_new / secs:.1f} img/s, "
        f"{summary.faces_indexed / secs:.1f} faces/s)",
        highlight=False,
    )
    if summary.faces_suppressed or summary.faces_below_quality:
        console.print(
            f"  {summary.faces_suppressed} faces skipped by opt-out, "
            f"{summary.faces_below_quality} below the quality floor"
        )
    for label, rows in (("failed", summary.failed), ("skipped", summary.skipped)):
        for item, reason in rows[:SHOWN]:
            console.print(
                f"  [yellow]{label}[/yellow] {escape(item)}: {escape(reason)}", highlight=False
            )
        if len(rows) > SHOWN:
            flag = " --skipped" if label == "skipped" else ""
            console.print(f"  ... and {len(rows) - SHOWN} more: faceindex failures{flag}")
    if summary.watch_alerts:
        console.print(
            f"  {summary.watch_alerts} new faces alerted a watch: faceindex watch alerts",
            highlight=False,
        )
    if summary.images_retired:
        console.print(
            f"  {summary.images_retired} images replaced in place were retired "
            f"(receipt {summary.retired_receipt})",
            highlight=False,
        )
    if summary.images_unheld:
        console.print(
            f"  {summary.images_unheld} images are no longer at any location (replaced in "
            "place); `faceindex gc` erases them with a receipt",
            highlight=False,
        )
