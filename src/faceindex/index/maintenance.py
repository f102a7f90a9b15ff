"""Optional upkeep an index may offer beyond the VectorIndex seam: stats, rebuild, compact.

``faceindex index stats|build|compact`` use these when the index implements them
(``isinstance(index, Maintainable)``); the memory oracle does not need them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Batches", "IndexStats", "Maintainable", "Reloadable"]

Batches = Iterable[tuple[np.ndarray, np.ndarray]]  # (ids, vectors) chunks, e.g. from a catalog


@dataclass(frozen=True)
class IndexStats:
    kind: str  # "flat", "ivf-pq", "milvus:HNSW", ...
    count: int  # live vectors
    ram_bytes: int  # what the index itself keeps in process memory (estimate from its arrays)
    disk_bytes: int  # files it owns (0 for a remote or in-memory store)
    trained_on: int = 0  # gallery size the compressed codes were trained on (0: untrained)
    needs_retrain: bool = False
    garbage: int = 0  # dead rows or tombstones that compact() would drop
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ram_bytes_per_face(self) -> float:
        return self.ram_bytes / self.count if self.count else 0.0


@runtime_checkable
class Maintainable(Protocol):
    def stats(self) -> IndexStats: ...

    def rebuild(self, batches: Batches, *, kind: str | None = None) -> int:
        """Replace the whole content by ``batches`` (retraining any compressed codes);
        returns how many vectors it holds afterwards."""
        ...

    def compact(self) -> int:
        """Physically drop removed vectors and rewrite files; returns how many were dropped."""
        ...


@runtime_checkable
class Reloadable(Protocol):
    """An index whose files another process may replace (a rebuild, a compaction, a kind
    switch), after which this process's copy must be read again before it changes them."""

    def replaced_on_disk(self) -> bool:
        """Whether the files were replaced since this object last loaded or wrote them."""
        ...

    def reload(self) -> None:
        """Read the files again, dropping what this object held (and had not saved)."""
        ...
