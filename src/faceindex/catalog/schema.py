"""Catalog schema migrations, shared by the SQLite and PostgreSQL catalogs.

MIGRATIONS[v] brings a v-1 catalog to v. Statements use the SQL both engines accept;
``INTEGER PRIMARY KEY`` is rewritten to an identity column by the PostgreSQL catalog.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            uri TEXT NOT NULL,
            owner TEXT NOT NULL,
            legal_basis TEXT NOT NULL,
            legal_reference TEXT NOT NULL DEFAULT '',
            purposes TEXT NOT NULL DEFAULT '[]',
            retention_days INTEGER NOT NULL,
            jurisdiction TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id),
            locator TEXT NOT NULL,
            image_id INTEGER REFERENCES images(id),
            sha256 TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            size BIGINT,
            mtime DOUBLE PRECISION,
            ingested_at TEXT NOT NULL,
            UNIQUE (source_id, locator)
        )""",
        "CREATE INDEX items_image ON items (image_id)",
        """CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            box_left INTEGER NOT NULL,
            box_top INTEGER NOT NULL,
            box_right INTEGER NOT NULL,
            box_bottom INTEGER NOT NULL,
            landmarks TEXT NOT NULL,
            detector TEXT NOT NULL,
            detector_score REAL NOT NULL,
            quality REAL NOT NULL,
            size INTEGER NOT NULL,
            sharpness REAL NOT NULL,
            pose REAL NOT NULL,
            model TEXT NOT NULL,
            embedding BLOB NOT NULL,
            thumbnail BLOB,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX faces_image ON faces (image_id)",
    ],
}
