"""Catalog contract fixtures: one fresh catalog per test on SQLite and on PostgreSQL
(builders for sources, faces and outcomes are in builders.py)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceindex.backends import open_catalog
from faceindex.catalog.base import Catalog
from tests.contract.builders import PG_ENV, OpenCatalog


def _pg_admin_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/start-postgres.sh prints one)")
    psycopg = pytest.importorskip(
        "psycopg", reason="needs psycopg: pip install 'faceindex[postgres]'"
    )
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"{PG_ENV} is set but PostgreSQL is not reachable there: {exc}")
    return url


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)],
)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for a fresh, empty catalog of the parametrised kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    admin = _pg_admin_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in admin else "?"
    yield f"{admin}{sep}schema={schema}"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def reopen(catalog_url: str) -> Iterator[OpenCatalog]:
    """Opens (or re-opens) the test's catalog; every catalog opened is closed at the end."""
    opened: list[Catalog] = []

    def open_() -> Catalog:
        cat = open_catalog(catalog_url)
        opened.append(cat)
        return cat

    yield open_
    for cat in opened:
        with contextlib.suppress(Exception):
            cat.close()


@pytest.fixture
def cat(reopen: OpenCatalog) -> Catalog:
    return reopen()
