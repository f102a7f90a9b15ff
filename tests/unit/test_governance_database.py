"""governance_url picks where governance state lives: the home's files, a folder, PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faceindex.config import Settings
from faceindex.errors import ConfigError
from faceindex.governance.database import SqliteDatabase, open_database

pytestmark = pytest.mark.unit


def test_default_is_todays_files_in_the_home(tmp_path: Path) -> None:
    assert Settings.load(tmp_path).governance_url == ""
    for part in ("audit", "governance", "accounts"):
        db = open_database("", tmp_path, part)
        assert isinstance(db, SqliteDatabase) and db.path == tmp_path / f"{part}.db"
        db.close()
    assert (tmp_path / "governance.db").is_file()


def test_a_sqlite_url_names_the_folder(tmp_path: Path) -> None:
    db = open_database(f"sqlite://{tmp_path / 'elsewhere'}", tmp_path / "home", "accounts")
    assert isinstance(db, SqliteDatabase) and db.path == tmp_path / "elsewhere" / "accounts.db"
    db.close()
    assert not (tmp_path / "home").exists()


def test_an_unknown_scheme_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown governance URL"):
        open_database("mysql://db/x", tmp_path, "audit")


def test_the_sqlite_lock_is_exclusive_across_connections(tmp_path: Path) -> None:
    one, two = SqliteDatabase(tmp_path / "g.db"), SqliteDatabase(tmp_path / "g.db")
    with one.lock("lock") as held, two.lock("lock", blocking=False) as also:
        assert held and not also
    with two.lock("lock", blocking=False) as now:
        assert now
    assert (tmp_path / "g.lock").is_file()  # the erasure lock's file name of before


def test_postgres_locks_are_per_schema() -> None:
    pytest.importorskip("psycopg", reason="pip install 'faceindex[postgres]'")
    from faceindex.governance.postgres import PostgresDatabase

    def key(schema: str | None, name: str) -> int:
        db = PostgresDatabase.__new__(PostgresDatabase)  # no connection: the key is pure
        db.schema = schema
        return db.lock_key(name)

    assert key("a", "lock") == key("a", "lock") != key("b", "lock")
    assert key(None, "lock") != key("a", "lock") and key("a", "lock") != key("a", "other")
    assert -(2**63) <= key("a", "lock") < 2**63


def test_importing_the_seam_does_not_import_psycopg() -> None:
    code = "import faceindex.governance.database, sys; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rate_limit_scope_home_keeps_buckets_in_the_governance_database(tmp_path: Path) -> None:
    from faceindex.server.app import rate_limiter
    from faceindex.server.ratelimit import RateLimiter
    from faceindex.server.ratelimit_shared import SharedRateLimiter

    assert isinstance(rate_limiter(Settings.load(tmp_path)), RateLimiter)
    shared = rate_limiter(Settings.load(tmp_path, rate_limit_scope="home", rate_limit_burst=1))
    assert isinstance(shared, SharedRateLimiter)
    assert shared.take("account:ana") == 0 and shared.take("account:ana") >= 1
    shared.close()
    again = rate_limiter(Settings.load(tmp_path, rate_limit_scope="home", rate_limit_burst=1))
    assert isinstance(again, SharedRateLimiter) and again.waiting("account:ana") >= 1
    again.close()
