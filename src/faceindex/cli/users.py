"""faceindex users add / revoke / list: the accounts the HTTP API accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, open_engine, settings_for

if TYPE_CHECKING:
    from faceindex.server.accounts import AccountStore

__all__ = ["app"]

app = typer.Typer(help="API accounts: one role each; tokens are shown once, stored hashed.")


def _store(home: HomeOpt) -> AccountStore:
    from faceindex.errors import ConfigError
    from faceindex.server.accounts import AccountStore

    settings = settings_for(home)
    if not settings.home.is_dir():
        raise ConfigError(f"no engine home at {settings.home}: run 'faceindex init' first")
    return AccountStore.for_home(settings.home, settings.governance_url)


@contextmanager
def _audited(home: HomeOpt) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Refuse unless the CLI actor may manage users; yields the audit recorder for the change."""
    from faceindex.governance.roles import Permission
    from faceindex.governance.service import Governance

    with open_engine(home) as engine, Governance.open(engine) as gov:
        if not gov.actor.can(Permission.MANAGE_USERS):
            gov.record_config_change({"accounts": "refused"})  # audits the refusal and raises
        yield gov.record_config_change


@app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="account name, e.g. 'j.smith'"),
    role: str = typer.Option(..., "--role", help="admin, investigator, auditor or privacy-officer"),
    home: HomeOpt = None,
) -> None:
    """Create an account and print its token (the only time it is shown)."""
    with _audited(home) as record:
        store = _store(home)
        try:
            token = store.add(name, role)
        finally:
            store.close()
        record({"account_added": name, "role": role})
    console.print(
        f"user [bold]{name}[/bold] ({role}) created; token (shown once):", highlight=False
    )
    typer.echo(token)


@app.command("revoke")
@handle_errors
def revoke(name: str = typer.Argument(...), home: HomeOpt = None) -> None:
    """Revoke an account's token at once; the account stays listed."""
    with _audited(home) as record:
        store = _store(home)
        try:
            account = store.revoke(name)
        finally:
            store.close()
        record({"account_revoked": name})
    console.print(f"user [bold]{name}[/bold] revoked at {account.revoked_at}", highlight=False)


@app.command("list")
@handle_errors
def list_(home: HomeOpt = None) -> None:
    """Every account, with its role and whether it is active."""
    store = _store(home)
    try:
        rows = store.accounts()
    finally:
        store.close()
    table = Table("name", "role", "created", "revoked")
    for a in rows:
        table.add_row(a.name, a.role.value, a.created_at, a.revoked_at or "-")
    console.print(table)
