"""faceindex users add / list / revoke, and serve's help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.server.accounts import AccountStore

pytestmark = pytest.mark.unit


def test_users_add_prints_the_token_once_then_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--home", str(home)]).exit_code == 0
    added = runner.invoke(
        app, ["users", "add", "ann", "--role", "investigator", "--home", str(home)]
    )
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    store = AccountStore.for_home(home)
    assert store.authenticate(token) is not None
    listed = runner.invoke(app, ["users", "list", "--home", str(home)])
    assert "ann" in listed.output and "investigator" in listed.output and token not in listed.output
    assert runner.invoke(app, ["users", "revoke", "ann", "--home", str(home)]).exit_code == 0
    assert store.authenticate(token) is None
    store.close()


def test_users_add_refuses_an_unknown_role(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    runner.invoke(app, ["init", "--home", str(home)])
    result = runner.invoke(app, ["users", "add", "x", "--role", "root", "--home", str(home)])
    assert result.exit_code == 2 and "unknown role" in result.output


def test_serve_is_registered() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_account_changes_are_audited_and_need_manage_users(tmp_path: Path) -> None:
    from faceindex.governance.audit import AuditLog

    home = tmp_path / "home"
    runner = CliRunner()
    runner.invoke(app, ["init", "--home", str(home)])
    assert (
        runner.invoke(
            app, ["users", "add", "ann", "--role", "auditor", "--home", str(home)]
        ).exit_code
        == 0
    )
    refused = runner.invoke(
        app,
        ["users", "add", "eve", "--role", "admin", "--home", str(home)],
        env={"FACEINDEX_ACTOR_ROLE": "investigator", "FACEINDEX_ACTOR": "mallory"},
    )
    assert refused.exit_code == 6
    store = AccountStore.for_home(home)
    assert [a.name for a in store.accounts()] == ["ann"]
    store.close()
    log = AuditLog(home / "audit.db")
    entries = [(e.event.action, e.event.actor, e.event.details) for e in log.entries()]
    log.close()
    assert (
        "config-change",
        "local-admin",
        {"changes": {"account_added": "ann", "role": "auditor"}},
    ) in entries
    assert any(action == "denied" and actor == "mallory" for action, actor, _ in entries)
