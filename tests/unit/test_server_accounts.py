"""Accounts: tokens shown once and stored only as hashes; revocation; validation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from faceindex.errors import InputError, NotFoundError
from faceindex.governance.roles import Role
from faceindex.server.accounts import AccountStore, hash_token

pytestmark = pytest.mark.unit


def test_token_authenticates_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "accounts.db")
    token = store.add("ann", "investigator")
    assert token.startswith("fi_") and len(token) > 40
    account = store.authenticate(token)
    assert account is not None and account.role is Role.INVESTIGATOR and account.active
    store.close()
    raw = (tmp_path / "accounts.db").read_bytes()
    assert token.encode() not in raw
    rows = sqlite3.connect(tmp_path / "accounts.db").execute("SELECT token_sha256 FROM accounts")
    assert [r[0] for r in rows] == [hash_token(token)]


def test_wrong_and_revoked_tokens_fail(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.db")
    token = store.add("bob", Role.ADMIN)
    assert store.authenticate(token + "x") is None
    assert store.authenticate("no-prefix") is None
    revoked = store.revoke("bob")
    assert revoked.revoked_at is not None and not revoked.active
    assert store.authenticate(token) is None
    with pytest.raises(InputError, match="already revoked"):
        store.revoke("bob")
    with pytest.raises(NotFoundError):
        store.revoke("nobody")


def test_every_token_is_different(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.db")
    tokens = {store.add(f"u{i}", "auditor") for i in range(20)}
    assert len(tokens) == 20
    assert [a.name for a in store.accounts()] == sorted(f"u{i}" for i in range(20))


@pytest.mark.parametrize(("name", "role"), [("", "admin"), ("a b", "admin"), ("ok", "root")])
def test_bad_names_and_roles_are_refused(tmp_path: Path, name: str, role: str) -> None:
    with pytest.raises(InputError):
        AccountStore(tmp_path / "a.db").add(name, role)


def test_duplicate_name_is_refused(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.db")
    store.add("ann", "admin")
    with pytest.raises(InputError, match="already exists"):
        store.add("ann", "auditor")
