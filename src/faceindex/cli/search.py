"""faceindex search PROBE --case --purpose."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.errors import EXIT_NO_MATCH
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError
from faceindex.types import SearchResult

__all__ = ["search", "results_to_json"]


def results_to_json(results: list[SearchResult]) -> list[dict[str, object]]:
    """Results as plain data. Never includes embeddings."""
    return [
        {
            "probe_face": {"box": r.probe.bbox.as_list(), "quality": r.probe.quality},
            "matches": [
                {
                    "face_id": m.face_id,
                    "image_id": m.image_id,
                    "distance": m.distance,
                    "similarity": m.similarity,
                    "decision": m.decision,
                    "box": m.bbox.as_list(),
                    "quality": m.quality,
                    "image_sha256": m.image_sha256,
                    "locations": [
                        {"source": p.source, "item": p.locator, "ingested_at": p.ingested_at}
                        for p in m.locations
                    ],
                }
                for m in r.matches
            ],
        }
        for r in results
    ]


@handle_errors
def search(
    probe: Path = typer.Argument(..., help="photo of the person to look for"),
    case: str = typer.Option(..., "--case", help="case reference this search is for"),
    purpose: str = typer.Option(..., "--purpose", help="why this search is made"),
    top: int = typer.Option(10, "--top", min=1, max=1000, help="matches per probe face"),
    largest: bool = typer.Option(False, "--largest", help="only the largest face in the probe"),
    source: list[str] = typer.Option([], "--source", help="search only these sources"),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Search the gallery for every face in PROBE. Exit 0 if a match is found, 1 if none."""
    if not case.strip() or not purpose.strip():
        raise InputError("a search needs a case reference and a purpose")
    try:
        data = probe.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read probe {probe}: {exc.strerror or exc}") from exc
    with open_governance(home) as gov:  # audited before results are shown; fails closed
        results = gov.search(
            data, case=case, purpose=purpose, top_k=top, largest=largest, sources=source or None
        )
    if as_json:
        console.print_json(
            json.dumps({"case": case, "purpose": purpose, "faces": results_to_json(results)})
        )
    else:
        _print(results)
    if not any(m.decision == "match" for r in results for m in r.matches):
        raise typer.Exit(EXIT_NO_MATCH)


def _print(results: list[SearchResult]) -> None:
    for n, r in enumerate(results, 1):
        box = r.probe.bbox.as_list()
        console.print(f"[bold]probe face {n}[/bold] at {box} (quality {r.probe.quality:.2f})")
        table = Table("#", "sim", "decision", "dist", "image (source:item)", "ingested")
        for rank, m in enumerate(r.matches, 1):
            colour = {"match": "green", "possible": "yellow"}.get(m.decision, "dim")
            where = "\n".join(f"{p.source}:{p.locator}" for p in m.locations) or "-"
            ingested = m.locations[0].ingested_at[:10] if m.locations else "-"
            table.add_row(
                str(rank),
                f"{m.similarity:.1f}",
                f"[{colour}]{m.decision}[/{colour}]",
                f"{m.distance:.3f}",
                where,
                ingested,
            )
        console.print(table)
