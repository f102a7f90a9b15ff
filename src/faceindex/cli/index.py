"""faceindex index stats / build / compact: the vector index's upkeep."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, open_engine
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError

__all__ = ["app"]

app = typer.Typer(help="Inspect, rebuild (retrain) and compact the vector index.")

KINDS = ("auto", "flat", "ivf")


def _stats(engine: Any) -> dict[str, Any]:
    from faceindex.index.maintenance import Maintainable

    index = engine.index
    if isinstance(index, Maintainable):
        st = index.stats()
        out = asdict(st)
        out["ram_bytes_per_face"] = round(st.ram_bytes_per_face, 1)
    else:
        out = {"kind": type(index).__name__, "count": index.count()}
    out["url"] = engine.settings.resolved_index_url
    out["catalog_faces"] = engine.catalog.count_faces()
    return out


def _show(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    table = Table("field", "value", show_header=False)
    details = out.pop("details", {}) or {}
    for key, value in {**out, **details}.items():
        table.add_row(str(key), str(value))
    console.print(table)


@app.command("stats")
@handle_errors
def stats(as_json: bool = typer.Option(False, "--json"), home: HomeOpt = None) -> None:
    """Kind, vectors held, bytes in RAM and on disk, and the gallery size it was trained on."""
    with open_engine(home) as engine:
        out = _stats(engine)
    _show(out, as_json)


@app.command("build")
@handle_errors
def build(
    kind: str = typer.Option(
        None, "--kind", help="flat (exact), ivf (IVF-PQ + exact re-rank) or auto (by size)"
    ),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Rebuild the index from the catalog, retraining any compressed codes on the gallery
    (needs the manage-index permission; audited)."""
    if kind is not None and kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}")
    started = time.perf_counter()
    with open_governance(home) as gov:
        n = gov.rebuild_index(kind)
        out = _stats(gov.engine)
    out["rebuilt"] = n
    out["seconds"] = round(time.perf_counter() - started, 2)
    if not as_json:
        console.print(f"rebuilt {n} vectors in {out['seconds']} s", highlight=False)
    _show(out, as_json)


@app.command("compact")
@handle_errors
def compact(as_json: bool = typer.Option(False, "--json"), home: HomeOpt = None) -> None:
    """Physically drop removed and replaced vectors and rewrite the index files
    (needs the manage-index permission; audited)."""
    with open_governance(home) as gov:
        dropped = gov.compact_index()
        out = _stats(gov.engine)
    out["dropped"] = dropped
    if not as_json:
        console.print(f"compacted: {dropped} dead vectors dropped", highlight=False)
    _show(out, as_json)
