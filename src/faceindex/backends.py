"""Backends chosen by URL. Heavy or optional libraries are imported here, inside the factory.

catalog:  sqlite:///abs/path/catalog.db   postgresql://user@host/db
index:    memory://   faiss:///abs/dir   milvus://host:19530/collection   milvus-lite:///file.db
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from faceindex.catalog.base import Catalog
from faceindex.errors import ConfigError, MissingDependency
from faceindex.index.base import Metric, VectorIndex

__all__ = ["open_catalog", "open_index"]


def _path(url: str) -> Path:
    parsed = urlparse(url)
    raw = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
    if not raw:
        raise ConfigError(f"{url!r} names no path")
    return Path(raw)


def open_catalog(url: str) -> Catalog:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from faceindex.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(_path(url))
    if scheme in ("postgresql", "postgres"):
        try:
            from faceindex.catalog.postgres import PostgresCatalog
        except ImportError as exc:
            raise MissingDependency(
                "the PostgreSQL catalog needs psycopg: pip install 'faceindex[postgres]'"
            ) from exc
        return PostgresCatalog(url)
    raise ConfigError(f"unknown catalog URL {url!r}: use sqlite:///path or postgresql://...")


def open_index(url: str, *, dim: int, metric: Metric) -> VectorIndex:
    scheme = urlparse(url).scheme
    if scheme == "memory":
        from faceindex.index.memory import MemoryIndex

        return MemoryIndex(dim, metric)
    if scheme == "faiss":
        from faceindex.index.faiss_index import FaissIndex

        return FaissIndex.from_url(url, dim=dim, metric=metric)
    if scheme in ("milvus", "milvus-lite"):
        try:
            from faceindex.index.milvus import MilvusIndex
        except ImportError as exc:
            raise MissingDependency(
                "the Milvus index needs pymilvus: pip install 'faceindex[milvus]'"
            ) from exc
        return MilvusIndex.from_url(url, dim=dim, metric=metric)
    raise ConfigError(f"unknown index URL {url!r}: use memory://, faiss:///dir or milvus://...")
