"""faceindex persons build|list|show|name|merge|split|remove-face."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError
from faceindex.persons.view import PersonView, person_dict

__all__ = ["app"]

app = typer.Typer(help="Persons: the gallery's faces clustered into people.", no_args_is_help=True)

AsJson = typer.Option(False, "--json", help="print JSON")


def _emit(views: list[PersonView], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"persons": [person_dict(v) for v in views]}))
        return
    table = Table("person", "label", "faces", "representative", "sources", "where")
    for v in views:
        p = v.person
        where = [f"{loc.source}:{loc.locator}" for f in v.faces for loc in f.locations]
        shown = "\n".join(where[:3]) + (f"\n(+{len(where) - 3} more)" if len(where) > 3 else "")
        table.add_row(
            str(p.id),
            p.label or "-",
            str(len(v.faces)),
            str(p.representative or "-"),
            ", ".join(v.sources) or "-",
            shown or "-",
        )
    console.print(table)


def _show(view: PersonView, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(person_dict(view)))
        return
    p = view.person
    label = f" '{p.label}' (by {p.labelled_by})" if p.label else ""
    console.print(f"[bold]person {p.id}[/bold]{label}: {len(view.faces)} faces", soft_wrap=True)
    table = Table("face", "box", "quality", "seen at")
    for f in view.faces:
        mark = " *" if f.id == p.representative else ""
        where = "\n".join(f"{loc.source}:{loc.locator}" for loc in f.locations) or "-"
        table.add_row(f"{f.id}{mark}", str(f.bbox.as_list()), f"{f.quality:.2f}", where)
    console.print(table)
    console.print("* the representative face", style="dim")


@app.command("build")
@handle_errors
def build(
    rebuild: bool = typer.Option(
        False, "--rebuild", help="re-cluster every face no user placed (default: only new ones)"
    ),
    as_json: bool = AsJson,
    home: HomeOpt = None,
) -> None:
    """Cluster faces into persons: new faces join a person or form one."""
    with open_governance(home) as gov:
        report = gov.persons.build(rebuild=rebuild)
    if as_json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(
        f"{report.faces_placed} faces placed ({report.method}, {report.links} links within "
        f"{report.edge:g}): {report.persons_created} new persons, {report.persons_joined} "
        f"grew; {report.persons} persons in all",
        soft_wrap=True,
    )


@app.command("list")
@handle_errors
def list_(as_json: bool = AsJson, home: HomeOpt = None) -> None:
    """Every person with its faces and where they were seen."""
    with open_governance(home) as gov:
        views = gov.persons.list()
    _emit(views, as_json)


@app.command("show")
@handle_errors
def show(
    person: int = typer.Argument(..., min=1), as_json: bool = AsJson, home: HomeOpt = None
) -> None:
    """One person: its faces, their boxes and locations."""
    with open_governance(home) as gov:
        view = gov.persons.show(person)
    _show(view, as_json)


@app.command("name")
@handle_errors
def name(
    person: int = typer.Argument(..., min=1),
    label: str = typer.Argument(..., help="a name or case label ('' clears it)"),
    as_json: bool = AsJson,
    home: HomeOpt = None,
) -> None:
    """Give a person a name or case label (audited)."""
    with open_governance(home) as gov:
        view = gov.persons.name(person, label)
    _show(view, as_json)


@app.command("merge")
@handle_errors
def merge(
    into: int = typer.Argument(..., min=1, help="the person that stays"),
    other: int = typer.Argument(..., min=1, help="the person whose faces move into it"),
    as_json: bool = AsJson,
    home: HomeOpt = None,
) -> None:
    """Merge person B into person A (audited; kept by later rebuilds)."""
    with open_governance(home) as gov:
        view = gov.persons.merge(into, other)
    _show(view, as_json)


def _ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(f"--faces takes face ids separated by commas, not {text!r}") from exc
    if not ids or any(i < 1 for i in ids):
        raise InputError("--faces takes positive face ids separated by commas")
    return ids


@app.command("split")
@handle_errors
def split(
    person: int = typer.Argument(..., min=1),
    faces: str = typer.Option(..., "--faces", help="face ids to move to a new person: F1,F2"),
    as_json: bool = AsJson,
    home: HomeOpt = None,
) -> None:
    """Move some faces of a person to a new person (audited)."""
    with open_governance(home) as gov:
        old, new = gov.persons.split(person, _ids(faces))
    _emit([old, new], as_json)


@app.command("remove-face")
@handle_errors
def remove_face(
    person: int = typer.Argument(..., min=1),
    face: int = typer.Argument(..., min=1),
    as_json: bool = AsJson,
    home: HomeOpt = None,
) -> None:
    """Take a face out of a person; it becomes a person of its own (audited)."""
    with open_governance(home) as gov:
        rest, own = gov.persons.remove_face(person, face)
    _emit([v for v in (rest, own) if v is not None], as_json)
