"""Fixtures shared by the integration modules that run several server processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.contract.builders import PG_ENV


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def shared(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings every process of the home gets: nothing (SQLite files in the home) or
    a PostgreSQL catalog and PostgreSQL governance state in a schema of their own."""
    if request.param == "sqlite":
        yield {}
        return
    admin = os.environ.get(PG_ENV, "")
    if not admin:
        pytest.skip(f"the PostgreSQL home needs {PG_ENV} (bash scripts/start-postgres.sh)")
    psycopg = pytest.importorskip("psycopg", reason="pip install 'faceindex[postgres]'")
    schema = f"s_{uuid.uuid4().hex[:12]}"
    url = f"{admin}{'&' if '?' in admin else '?'}schema={schema}"
    yield {"FACEINDEX_CATALOG_URL": url, "FACEINDEX_GOVERNANCE_URL": url}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
