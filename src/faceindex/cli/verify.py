"""faceindex verify A B --case --purpose: 1:1, the same person or not."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.errors import EXIT_NO_MATCH
from faceindex.cli.governed import open_governance, read_photos
from faceindex.errors import InputError
from faceindex.search.case_result import verification_dict

__all__ = ["verify"]


@handle_errors
def verify(
    photo_a: Path = typer.Argument(..., help="photo A"),
    photo_b: Path = typer.Argument(..., help="photo B"),
    case: str = typer.Option(..., "--case", help="case reference this comparison is for"),
    purpose: str = typer.Option(..., "--purpose", help="why this comparison is made"),
    face_a: int | None = typer.Option(
        None, "--face-a", min=1, help="which face of photo A (1-based; default: the largest)"
    ),
    face_b: int | None = typer.Option(
        None, "--face-b", min=1, help="which face of photo B (1-based; default: the largest)"
    ),
    match_bound: float | None = typer.Option(
        None,
        "--match-bound",
        min=1e-9,
        max=0.5,
        help="call the same person only below this share of strangers this close (default 0.01)",
    ),
    as_json: bool = typer.Option(False, "--json"),
    home: HomeOpt = None,
) -> None:
    """Compare one face of A with one face of B. Exit 0: the same person; 1: not established
    or different people; 2: bad input or a photo with no face."""
    if not case.strip() or not purpose.strip():
        raise InputError("a verification needs a case reference and a purpose")
    data_a, data_b = read_photos([photo_a, photo_b])
    with open_governance(home) as gov:  # audited before the answer is shown; fails closed
        v = gov.verify(
            data_a,
            data_b,
            case=case,
            purpose=purpose,
            face_a=face_a,
            face_b=face_b,
            match_bound=match_bound,
        )
    body = verification_dict(v, case_reference=case, purpose=purpose)
    if as_json:
        console.print_json(json.dumps(body))
    else:
        colour = {"match": "green", "possible": "yellow"}.get(v.decision, "red")
        console.print(
            f"[{colour}]{v.decision}[/{colour}]: distance {v.distance:.3f}, "
            f"fmr {v.fmr:.3g}. {body['meaning']}",
            soft_wrap=True,
        )
        for label, face in zip("AB", v.faces, strict=True):
            console.print(
                f"photo {label}: face {face.chosen} of {face.faces_found} at "
                f"{face.bbox.as_list()} (quality {face.quality:.2f})",
                soft_wrap=True,
            )
            for warning in face.warnings:
                console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if not v.same_person:
        raise typer.Exit(EXIT_NO_MATCH)
