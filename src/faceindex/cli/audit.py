"""faceindex audit verify / export."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from faceindex.cli.common import HomeOpt, console, handle_errors
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError

__all__ = ["app"]

app = typer.Typer(help="The tamper-evident audit log: verify the hash chain, export it.")


@app.command("verify")
@handle_errors
def verify(
    file: Path | None = typer.Option(
        None, "--file", help="verify an exported JSONL file instead of the live log"
    ),
    home: HomeOpt = None,
) -> None:
    """Re-hash the chain; names the first edited, removed or reordered entry. Exit 1 if bad."""
    if file is not None:
        from faceindex.governance.audit import verify_jsonl

        try:
            with open(file) as fh:
                report = verify_jsonl(fh)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}") from exc
    else:
        with open_governance(home) as gov:
            report = gov.verify_audit()
    if report.ok:
        console.print(
            f"[green]audit log intact[/green]: {report.entries} entries, head {report.head_hash}"
        )
        return
    where = f"entry {report.first_bad}" if report.first_bad else "the log"
    console.print(f"[red]audit log tampered[/red] at {where}: {report.reason}", highlight=False)
    raise typer.Exit(1)


@app.command("export")
@handle_errors
def export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (verifiable offline) or csv"),
    out: Path | None = typer.Option(None, "--out", help="file to write (default: stdout)"),
    home: HomeOpt = None,
) -> None:
    """Write the whole log for an auditor."""
    with open_governance(home) as gov:
        if out is None:
            gov.export_audit(sys.stdout, fmt)
            return
        try:
            with open(out, "w", newline="") as fh:
                n = gov.export_audit(fh, fmt)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    console.print(f"{n} audit entries written to {out}", highlight=False)
