"""API accounts: a name, one role, and the sha256 of a bearer token.

The token is shown once, when the account is made; only its hash is stored, so a stolen
``accounts.db`` does not let anyone sign in. Tokens are 256 random bits, so an unsalted
sha256 is enough (there is nothing to brute-force). Revoked accounts stay listed.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from faceindex.catalog.sqlite import connect
from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.governance.roles import Actor, Role

__all__ = ["Account", "AccountStore", "hash_token"]

TOKEN_PREFIX = "fi_"


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class AccountStore:
    """``<home>/accounts.db``. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = connect(self.path, secure_delete=True)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
                " token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open accounts {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def for_home(cls, home: Path) -> AccountStore:
        return cls(home / "accounts.db")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, name: str, role: Role | str) -> str:
        """Create an account; returns its token (the only time it is ever available)."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InputError(f"user name {name!r}: use letters, digits, '.', '-' and '_'")
        try:
            role = Role(role)
        except ValueError as exc:
            choices = ", ".join(r.value for r in Role)
            raise InputError(f"unknown role {role!r}; one of: {choices}") from exc
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO accounts (name, role, token_sha256, created_at) VALUES (?,?,?,?)",
                    (name, role.value, hash_token(token), _now()),
                )
        except sqlite3.IntegrityError as exc:
            raise InputError(f"a user named {name!r} already exists") from exc
        return token

    def revoke(self, name: str) -> Account:
        with self._lock:
            cur = self._db.execute(
                "UPDATE accounts SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (_now(), name),
            )
        if cur.rowcount == 0:
            account = self.get(name)  # raises NotFoundError for an unknown name
            if not account.active:
                raise InputError(f"user {name!r} is already revoked")
        return self.get(name)

    def get(self, name: str) -> Account:
        rows = self._rows("SELECT * FROM accounts WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no user named {name!r}")
        return rows[0]

    def accounts(self) -> list[Account]:
        return self._rows("SELECT * FROM accounts ORDER BY name", ())

    def authenticate(self, token: str) -> Account | None:
        """The active account holding this token, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        rows = self._rows(
            "SELECT * FROM accounts WHERE token_sha256 = ? AND revoked_at IS NULL",
            (hash_token(token),),
        )
        return rows[0] if rows else None

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[Account]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [Account(name=r[0], role=Role(r[1]), created_at=r[3], revoked_at=r[4]) for r in rows]
