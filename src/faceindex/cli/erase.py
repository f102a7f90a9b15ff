"""faceindex erase face / image / source / person / verify / receipts / tombstones / lift."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance, read_photos
from faceindex.governance.base import Receipt

__all__ = ["app"]

app = typer.Typer(help="Erase faces, images, sources or a person, with a receipt for each.")

ReasonOpt = typer.Option("", "--reason", help="why (request reference, ruling, ...)")
JsonOpt = typer.Option(False, "--json")


def _show(receipt: Receipt, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(receipt.as_dict()))
        return
    console.print(
        f"receipt [bold]{receipt.id}[/bold]: {receipt.faces_deleted} faces and "
        f"{receipt.images_deleted} images erased ({receipt.kind} {receipt.target}); "
        f"digest {receipt.faces_digest[:16]}…, audit entry {receipt.audit_seq}"
        + (" (finished after the erasing process was interrupted)" if receipt.recovered else ""),
        highlight=False,
    )
    for path in receipt.exports:
        console.print(f"  [yellow]exported earlier to[/yellow] {path}", highlight=False)


@app.command("face")
@handle_errors
def face(
    ids: list[int] = typer.Argument(..., help="face ids (from search results)"),
    reason: str = ReasonOpt,
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """Erase single faces."""
    with open_governance(home) as gov:
        _show(gov.erase_faces(ids, reason=reason), as_json)


@app.command("image")
@handle_errors
def image(
    ids: list[int] = typer.Argument(..., help="image ids (from search results)"),
    reason: str = ReasonOpt,
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """Erase whole images: every face in them and every place they were seen."""
    with open_governance(home) as gov:
        _show(gov.erase_images(ids, reason=reason), as_json)


@app.command("source")
@handle_errors
def source(
    name: str = typer.Argument(..., help="a registered source"),
    reason: str = ReasonOpt,
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """Erase a source and everything only it held; lists the exports that copied it."""
    with open_governance(home) as gov:
        _show(gov.erase_source(name, reason=reason), as_json)


@app.command("person")
@handle_errors
def person(
    photos: list[Path] = typer.Argument(..., help="one or more photos of the person"),
    reason: str = ReasonOpt,
    threshold: float | None = typer.Option(None, help="distance (default: erase_threshold)"),
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """Erase every face matching the person's photos (strict threshold)."""
    with open_governance(home) as gov:
        _show(gov.erase_person(read_photos(photos), reason=reason, threshold=threshold), as_json)


@app.command("verify")
@handle_errors
def verify(
    receipt: str = typer.Argument(..., help="receipt id"),
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """Re-check that nothing of an erasure remains. Exit 0 if clean, 1 if not."""
    with open_governance(home) as gov:
        check = gov.verify_receipt(receipt)
    if as_json:
        data = asdict(check)
        data["receipt"] = check.receipt.as_dict()
        console.print_json(json.dumps(data))
    elif check.ok:
        probe = " (and by the person's probe)" if check.probe_checked else ""
        probe += " (ids and content)" if check.receipt.kind in ("image", "source") else ""
        console.print(f"[green]verified[/green]: nothing of {receipt} remains{probe}")
    else:
        for problem in check.problems:
            console.print(f"[red]not clean[/red]: {problem}", highlight=False)
    if not check.ok:
        raise typer.Exit(1)


@app.command("receipts")
@handle_errors
def receipts(home: HomeOpt = None) -> None:
    """Every deletion receipt."""
    with open_governance(home) as gov:
        rows = gov.receipts()
    table = Table("when", "kind", "target", "faces", "images", "by", "audit")
    table.add_column("receipt", no_wrap=True)
    for r in rows:
        table.add_row(
            r.at, r.kind, r.target[:16], str(r.faces_deleted), str(r.images_deleted),
            r.actor, str(r.audit_seq), r.id,
        )  # fmt: skip
    console.print(table)


@app.command("tombstones")
@handle_errors
def tombstones(
    receipt: str | None = typer.Option(None, "--receipt", help="only this receipt's"),
    as_json: bool = JsonOpt,
    home: HomeOpt = None,
) -> None:
    """The erased images' content (sha256) that every ingest refuses (privacy officer, admin)."""
    with open_governance(home) as gov:
        rows = gov.tombstones(receipt)
    if as_json:
        console.print_json(json.dumps([asdict(t) for t in rows]))
        return
    table = Table("since", "receipt", "sha256")
    for t in rows:
        table.add_row(t.since, t.receipt_id, t.sha256)
    console.print(table)


@app.command("lift")
@handle_errors
def lift(
    target: str = typer.Argument(..., help="an erased image's sha256, or a receipt id"),
    reason: str = typer.Option(..., "--reason", help="why the content may be held again"),
    home: HomeOpt = None,
) -> None:
    """Lift a tombstone (audited): the erased bytes may be ingested again."""
    with open_governance(home) as gov:
        lifted = gov.lift_tombstone(target, reason=reason)
    console.print(f"{len(lifted)} tombstones lifted; those images may be ingested again")
