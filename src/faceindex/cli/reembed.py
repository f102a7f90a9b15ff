"""faceindex reembed --model NAME|PATH: move a home to another model pack."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.progress import Progress

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance

__all__ = ["reembed"]


@handle_errors
def reembed(
    model: str = typer.Option(
        ..., "--model", help="a built-in pack name (dlib) or the directory of a model pack"
    ),
    home: HomeOpt = None,
    as_json: bool = typer.Option(False, "--json"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Re-read every held image through its source with another model, build a new catalog
    and index beside the old ones and switch to them when complete. Resumable: run it again
    after a crash. Needs the manage-index permission; audited."""
    path = Path(model).expanduser()
    name = str(path.resolve()) if path.exists() else model  # a directory, wherever run from
    with (
        open_governance(home) as gov,
        Progress(console=console, disable=quiet or as_json, transient=True) as bar,
    ):
        task = bar.add_task("re-embedding", total=None)
        report = gov.reembed(
            name, progress=lambda p: bar.update(task, total=p.total, completed=p.done)
        )
    if as_json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(f"home moved from {report.model_from} to {report.model_to}", highlight=False)
    console.print(
        f"  {report.images} images, {report.faces} faces; {report.faces_not_found} old faces "
        f"not found by the new model, {report.items_gone} items gone from their source, "
        f"{report.failed} unreadable; {report.receipt_probes_dropped} person probes dropped",
        highlight=False,
    )
