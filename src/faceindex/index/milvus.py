"""Milvus: the vector index past one machine (a cluster), or Milvus Lite in a local file.

    milvus://[user:password@]host:19530/faces[?index=HNSW&M=16&efConstruction=200&ef=128]
    milvus-lite:///abs/path/faces.db[?collection=faces]

One collection per engine: ``id`` (INT64 primary key = catalog face id) and ``vector``
(FLOAT_VECTOR). The collection is created with consistency level Strong and every read
passes it again, so a search issued after a delete never sees the deleted face. Milvus
returns squared L2; distances are square-rooted here to keep the VectorIndex contract.
An existing collection is loaded on open (a new process finds it released), and a read
that finds it released later (a restarted server, an operator) loads it and retries. Milvus
Lite is one process's file: closing the index stops its in-process server and frees the file
for the next process, but a server and a CLI cannot hold one Lite file at once (use a Milvus
server for that). Tested with pymilvus 3.0.2 and milvus-lite 3.2.2 (pinned in the extra),
and with pymilvus 3.0.2 against a Milvus 2.3.5 standalone server (PyPI's ``milvus``, see
scripts/start-milvus.sh; not a cluster). Milvus Lite builds only FLAT indexes (exact); a
server defaults to HNSW (approximate).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

import numpy as np

from faceindex.errors import ConfigError, MissingDependency, StorageError
from faceindex.index.base import Capabilities, Metric, as_ids, as_vectors, as_within
from faceindex.index.maintenance import Batches, IndexStats

__all__ = ["MilvusIndex"]

log = logging.getLogger(__name__)
STRONG = "Strong"
MAX_TOPK = 16384  # Milvus refuses larger limits
FILTER_IDS = 10_000  # ids per "id in [...]" filter expression
INT_PARAMS = {"M", "efConstruction", "nlist", "m", "nbits", "search_list"}
SEARCH_PARAMS = {"ef": "ef", "nprobe": "nprobe", "search_list": "search_list"}


def _client(uri: str, token: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependency("Milvus needs pymilvus: pip install 'faceindex[milvus]'") from exc
    try:
        return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
    except Exception as exc:  # pymilvus raises its own MilvusException tree
        raise StorageError(f"cannot connect to Milvus at {uri}: {exc}") from exc


def _release_lite(path: str) -> None:
    """Stop this process's Milvus Lite server for ``path``: it holds the file's lock until
    then (milvus-lite 3 runs in-process until exit), so the next process could not open it."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # pragma: no cover - lite URLs need milvus-lite to open at all
        return
    server_manager_instance.release_server(path)


def _not_loaded(exc: BaseException | None) -> bool:
    """Whether Milvus refused a read because the collection is not loaded (code 101 since
    2.3's error codes; the message for servers that send only text)."""
    return getattr(exc, "code", None) == 101 or "not loaded" in str(exc).lower()


class MilvusIndex:
    def __init__(
        self,
        client: Any,
        collection: str,
        *,
        dim: int,
        metric: Metric,
        lite: bool,
        index_type: str = "FLAT",
        build_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        lite_path: str = "",
    ) -> None:
        self.dim, self.metric, self.collection = dim, metric, collection
        self._lite_path = lite_path
        self._client, self._lite = client, lite
        self.index_type = "FLAT" if lite else index_type
        self._mtype = "L2" if metric == "l2" else "IP"
        self._search_params = search_params or {}
        self._build_params = build_params or {}
        self.capabilities = Capabilities(
            exact=self.index_type == "FLAT",
            supports_delete=True,
            persistent=True,
            distributed=not lite,
        )
        self._call(self._ensure_collection, self._build_params)

    @classmethod
    def from_url(cls, url: str, *, dim: int, metric: Metric = "l2") -> MilvusIndex:
        parsed = urlparse(url)
        query = dict(parse_qsl(parsed.query))
        if parsed.scheme == "milvus-lite":
            path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
            if not path:
                raise ConfigError(f"{url!r} names no Milvus Lite file")
            collection = query.pop("collection", "faces")
            return cls(
                _client(path, ""), collection, dim=dim, metric=metric, lite=True, lite_path=path
            )
        if parsed.scheme != "milvus" or not parsed.hostname:
            raise ConfigError(f"{url!r} is not milvus://host:port/collection")
        collection = parsed.path.strip("/") or "faces"
        secure = query.pop("secure", "") in ("1", "true")
        uri = f"{'https' if secure else 'http'}://{parsed.hostname}:{parsed.port or 19530}"
        token = ""
        if parsed.username:
            token = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        index_type = query.pop("index", "HNSW").upper()
        search = {SEARCH_PARAMS[k]: int(query.pop(k)) for k in list(query) if k in SEARCH_PARAMS}
        build = {k: int(v) if k in INT_PARAMS else v for k, v in query.items()}
        if index_type == "HNSW":
            build = {"M": 16, "efConstruction": 200, **build}
        return cls(
            _client(uri, token),
            collection,
            dim=dim,
            metric=metric,
            lite=False,
            index_type=index_type,
            build_params=build,
            search_params=search,
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, StorageError):
            raise
        except Exception as exc:  # MilvusException and gRPC errors
            raise StorageError(f"Milvus {self.collection}: {exc}") from exc

    def _read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A search or query; a collection found released is loaded and the call retried once.
        A Milvus server restarts with its collections released (2.3 standalone: "collection
        not loaded" until someone loads it), and an operator may release one: a long-lived
        process holding this index must not fail every search until it is reopened."""
        try:
            return self._call(fn, *args, **kwargs)
        except StorageError as exc:
            if not _not_loaded(exc.__cause__):
                raise
        log.warning(
            "Milvus collection %s was released (a server restart?): loading it", self.collection
        )
        self._call(self._client.load_collection, self.collection)
        return self._call(fn, *args, **kwargs)

    def _ensure_collection(self, build_params: dict[str, Any]) -> None:
        from pymilvus import DataType, MilvusClient

        c = self._client
        if c.has_collection(self.collection):
            # A collection is searchable only while loaded; one made by an earlier process
            # (always, with Milvus Lite) or released by an operator is not: load it.
            c.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = c.prepare_index_params()
        params.add_index(
            field_name="vector",
            index_type=self.index_type,
            metric_type=self._mtype,
            params=build_params,
        )
        c.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level=STRONG
        )
        log.info(
            "created Milvus collection %s (%s, %s)", self.collection, self.index_type, self._mtype
        )

    # -- VectorIndex ------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vecs = as_ids(ids), as_vectors(vectors, self.dim)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        for s in range(0, len(ids), 5000):  # stay under gRPC's message size limit
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[s : s + 5000], vecs[s : s + 5000], strict=True)
            ]
            self._call(self._client.upsert, self.collection, rows)  # upsert: re-add replaces

    def remove(self, ids: np.ndarray) -> int:
        ids = as_ids(ids)
        present = self._present(ids)  # Milvus's delete count is the request's, not the hits
        if len(present):
            self._call(self._client.delete, self.collection, ids=present.tolist())
        return len(present)

    def _present(self, ids: np.ndarray) -> np.ndarray:
        found: list[int] = []
        for s in range(0, len(ids), 10000):
            rows = self._read(
                self._client.query,
                self.collection,
                ids=ids[s : s + 10000].tolist(),
                output_fields=["id"],
                consistency_level=STRONG,
            )
            found += [int(r["id"]) for r in rows]
        return np.asarray(found, dtype=np.int64)

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``within`` becomes a boolean filter on the primary key (``id in [...]``), sent in
        parts of ``FILTER_IDS`` ids whose results are merged."""
        q = as_vectors(queries, self.dim)
        keep = as_within(within)
        if keep is None:
            return self._search(q, k, "")
        parts = [
            self._search(q, k, f"id in {keep[s : s + FILTER_IDS].tolist()}")
            for s in range(0, len(keep), FILTER_IDS)
        ] or [self._search(q, k, "id in []")]
        dist, ids = np.hstack([p[0] for p in parts]), np.hstack([p[1] for p in parts])
        key = dist if self.metric == "l2" else -dist
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)

    def _search(self, q: np.ndarray, k: int, expr: str) -> tuple[np.ndarray, np.ndarray]:
        fill = np.inf if self.metric == "l2" else -np.inf
        dist = np.full((len(q), k), fill, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        limit = min(k, MAX_TOPK)
        inner = dict(self._search_params)
        if self.index_type == "HNSW":
            inner.setdefault("ef", max(64, limit))
        params = {"metric_type": self._mtype, "params": inner}
        hits = self._read(
            self._client.search,
            self.collection,
            data=q.tolist(),
            limit=limit,
            filter=expr,
            search_params=params,
            output_fields=["id"],
            consistency_level=STRONG,
        )
        for row, found in enumerate(hits):
            for col, hit in enumerate(found):
                out[row, col] = int(hit["id"])
                d = float(hit["distance"])
                dist[row, col] = np.sqrt(max(d, 0.0)) if self.metric == "l2" else d
        return dist, out

    def count(self) -> int:
        rows = self._read(
            self._client.query,
            self.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level=STRONG,
        )
        return int(rows[0]["count(*)"])

    def ids(self) -> np.ndarray:
        it = self._read(
            self._client.query_iterator,
            self.collection,
            batch_size=10000,
            output_fields=["id"],
            consistency_level=STRONG,
        )
        out: list[int] = []
        try:
            while batch := self._call(it.next):
                out += [int(r["id"]) for r in batch]
        finally:
            it.close()
        return np.asarray(out, dtype=np.int64)

    def save(self) -> None:
        """Milvus persists writes itself (its WAL); nothing to do per batch."""
        return None

    def close(self) -> None:
        self._call(self._client.close)
        if self._lite_path:
            _release_lite(self._lite_path)

    # -- upkeep -----------------------------------------------------------------------------

    def stats(self) -> IndexStats:
        info = self._call(self._client.describe_index, self.collection, "vector")
        return IndexStats(
            kind=f"milvus{'-lite' if self._lite else ''}:{info.get('index_type', '?')}",
            count=self.count(),
            ram_bytes=0,
            disk_bytes=0,
            details={
                "collection": self.collection,
                "metric": info.get("metric_type"),
                "indexed_rows": info.get("indexed_rows"),
                "pending_index_rows": info.get("pending_index_rows"),
            },
        )

    def rebuild(self, batches: Batches, *, kind: str | None = None) -> int:
        """Drop and recreate the collection, then re-add every batch (Milvus builds indexes
        on sealed segments by itself; ``kind`` is not used)."""
        self._call(self._client.drop_collection, self.collection)
        self._call(self._ensure_collection, self._build_params)
        n = 0
        for ids, vecs in batches:
            self.add(ids, vecs)
            n += len(ids)
        return n

    def compact(self) -> int:
        """Ask Milvus to merge segments and purge deleted rows (it runs in the background)."""
        job = self._call(self._client.compact, self.collection)
        log.info("Milvus compaction job %s started for %s", job, self.collection)
        return 0
