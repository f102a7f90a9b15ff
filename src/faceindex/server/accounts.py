"""API accounts: a name, one role, and the sha256 of a bearer token.

The token is shown once, when the account is made; only its hash is stored, so a stolen
``accounts.db`` (or ``accounts`` table in PostgreSQL, by ``governance_url``) does not let
anyone sign in. Tokens are 256 random bits, so an unsalted
sha256 is enough (there is nothing to brute-force). Revoked accounts stay listed.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.governance.database import Database, SqliteDatabase, open_database
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
    """``<home>/accounts.db``, or the ``accounts`` table of the home's governance database.
    Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path | str | Database) -> None:
        if isinstance(path, (str, Path)):
            self.path: Path | None = Path(path)
            self._db: Database = SqliteDatabase(self.path, secure_delete=True)
        else:
            self._db = path
            self.path = getattr(path, "path", None)
        try:
            self._db.ddl(
                [
                    "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY,"
                    " role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,"
                    " created_at TEXT NOT NULL, revoked_at TEXT)"
                ]
            )
        except self._db.errors as exc:
            self._db.close()
            raise StorageError(f"cannot open accounts {self._db.url}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def for_home(cls, home: Path, governance_url: str = "") -> AccountStore:
        return cls(open_database(governance_url, home, "accounts"))

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
            with self._lock, self._db.tx() as tx:
                tx.execute(
                    "INSERT INTO accounts (name, role, token_sha256, created_at) VALUES (?,?,?,?)",
                    (name, role.value, hash_token(token), _now()),
                )
        except self._db.integrity_errors as exc:
            raise InputError(f"a user named {name!r} already exists") from exc
        except self._db.errors as exc:
            raise StorageError(f"accounts {self._db.url}: {exc}") from exc
        return token

    def revoke(self, name: str) -> Account:
        try:
            with self._lock, self._db.tx() as tx:
                changed = tx.execute(
                    "UPDATE accounts SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                    (_now(), name),
                ).rowcount
        except self._db.errors as exc:
            raise StorageError(f"accounts {self._db.url}: {exc}") from exc
        if changed == 0:
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
        try:
            with self._lock:
                rows = self._db.rows(sql, params)
        except self._db.errors as exc:
            raise StorageError(f"accounts {self._db.url}: {exc}") from exc
        return [Account(name=r[0], role=Role(r[1]), created_at=r[3], revoked_at=r[4]) for r in rows]
