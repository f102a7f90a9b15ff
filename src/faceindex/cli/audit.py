"""faceindex audit verify / export / anchor."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from faceindex.cli.common import HomeOpt, console, handle_errors, settings_for
from faceindex.cli.governed import open_governance
from faceindex.errors import InputError
from faceindex.governance.audit import AuditHead, VerifyReport

__all__ = ["app"]

app = typer.Typer(
    help="The tamper-evident audit log: verify the keyed hash chain, export it, anchor its head."
)


def _anchors(path: Path | None) -> list[AuditHead]:
    if path is None:
        return []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    heads = [AuditHead.parse(line) for line in lines if line.strip()]
    if not heads:
        raise InputError(f"{path} holds no anchored head")
    return heads


def _offline_key(home: Path | None, key_file: Path | None) -> bytes | None:
    from faceindex.governance.audit_key import audit_key, parse_key

    if key_file is not None:
        try:
            return parse_key(key_file.read_text(), str(key_file))
        except OSError as exc:
            raise InputError(f"cannot read {key_file}: {exc.strerror or exc}") from exc
    return audit_key(settings_for(home), create=False)[0]


@app.command("verify")
@handle_errors
def verify(
    file: Path | None = typer.Option(
        None, "--file", help="verify an exported JSONL file instead of the live log"
    ),
    anchor: Path | None = typer.Option(
        None, "--anchor", help="heads written by 'audit anchor': each must match its entry"
    ),
    key_file: Path | None = typer.Option(
        None, "--key-file", help="with --file: the audit key (default: the home's setting)"
    ),
    home: HomeOpt = None,
) -> None:
    """Re-check the chain; names the first edited, removed or reordered entry. Exit 1 if bad."""
    heads = _anchors(anchor)
    note = ""
    if file is not None:
        from faceindex.governance.audit import verify_jsonl

        key = _offline_key(home, key_file)
        try:
            with open(file) as fh:
                report = verify_jsonl(fh, heads, key=key)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}") from exc
    else:
        with open_governance(home) as gov:
            report = gov.verify_audit(heads)
            if gov.audit.key_inside_home:
                note = (
                    f"[yellow]note[/yellow]: the audit key is inside the engine home "
                    f"({gov.audit.key_origin}); whoever can read the home can re-sign a forgery"
                )
    _show(report, note)


def _show(report: VerifyReport, note: str) -> None:
    if report.ok:
        keyed = "keyed" if report.keyed else "NOT keyed"
        legacy = f", {report.legacy} legacy (unkeyed) entries" if report.legacy else ""
        anchors = f", {report.anchors} anchored heads matched" if report.anchors else ""
        console.print(
            f"[green]audit log intact[/green]: {report.entries} entries ({keyed}{legacy}"
            f"{anchors}), head {report.head_hash}",
            highlight=False,
        )
        if note:
            console.print(note, highlight=False)
        return
    where = f"entry {report.first_bad}" if report.first_bad else "the log"
    console.print(f"[red]audit log tampered[/red] at {where}: {report.reason}", highlight=False)
    raise typer.Exit(1)


@app.command("anchor")
@handle_errors
def anchor(
    out: Path = typer.Option(..., "--out", help="file to append the signed head to (elsewhere)"),
    home: HomeOpt = None,
) -> None:
    """Append the log's signed head to a file kept elsewhere (schedule it, e.g. hourly)."""
    with open_governance(home) as gov:
        head = gov.anchor_audit(out)
    console.print(f"anchored entry {head.seq} ({head.hash[:16]}…) to {out}", highlight=False)


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
