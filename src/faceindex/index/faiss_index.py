"""FAISS index, persisted atomically in a directory: exact (flat) search with delete."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from faceindex.errors import MissingDependency, StorageError
from faceindex.index.base import Capabilities, Metric, as_ids, as_vectors

__all__ = ["FaissIndex"]

log = logging.getLogger(__name__)
INDEX_FILE = "faces.faiss"


def _faiss():  # type: ignore[no-untyped-def]
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependency("FAISS is not installed: pip install faiss-cpu") from exc
    return faiss


class FaissIndex:
    """``IndexIDMap2`` over ``IndexFlatL2`` (or ``IndexFlatIP``): exact, deletable, on disk.

    Saves write a temporary file, fsync it, and rename it over the old one, so a crash
    leaves either the old or the new index, never half of one.
    """

    capabilities = Capabilities(
        exact=True, supports_delete=True, persistent=True, distributed=False
    )

    def __init__(self, directory: Path | str, dim: int = 128, metric: Metric = "l2") -> None:
        self._faiss = _faiss()
        self.dim = dim
        self.metric: Metric = metric
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / INDEX_FILE
        self._dirty = False
        if self._path.exists():
            try:
                self._index = self._faiss.read_index(str(self._path))
            except RuntimeError as exc:
                raise StorageError(f"cannot read FAISS index {self._path}: {exc}") from exc
            if self._index.d != dim:
                raise StorageError(f"{self._path} holds {self._index.d}-d vectors, not {dim}-d")
        else:
            self._index = self._new()

    def _new(self):  # type: ignore[no-untyped-def]
        faiss = self._faiss
        flat = faiss.IndexFlatL2(self.dim) if self.metric == "l2" else faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(flat)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vecs = as_vectors(vectors, self.dim)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        if not len(ids):
            return
        self.remove(ids)
        self._index.add_with_ids(vecs, ids)
        self._dirty = True

    def remove(self, ids: np.ndarray) -> int:
        ids = as_ids(ids)
        if not len(ids) or self._index.ntotal == 0:
            return 0
        removed = int(self._index.remove_ids(self._faiss.IDSelectorArray(ids)))
        self._dirty = self._dirty or removed > 0
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = as_vectors(queries, self.dim)
        if self._index.ntotal == 0:
            fill = np.inf if self.metric == "l2" else -np.inf
            return (
                np.full((len(q), k), fill, dtype=np.float32),
                np.full((len(q), k), -1, dtype=np.int64),
            )
        dist, ids = self._index.search(q, k)
        if self.metric == "l2":
            dist = np.sqrt(np.maximum(dist, 0))
            dist[ids < 0] = np.inf
        return dist.astype(np.float32), ids.astype(np.int64)

    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return self._faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def save(self) -> None:
        if not self._dirty and self._path.exists():
            return
        tmp = self._path.with_suffix(".tmp")
        try:
            self._faiss.write_index(self._index, str(tmp))
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._path)
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except (OSError, RuntimeError) as exc:
            raise StorageError(f"cannot save FAISS index to {self._path}: {exc}") from exc
        self._dirty = False
        log.debug("saved %d vectors to %s", self._index.ntotal, self._path)

    def close(self) -> None:
        self.save()
