"""An index kept in step with its catalog, whichever process changed the catalog.

Every process that opens an engine home holds its own copy of the vector index (in RAM, or
files it maps), while the catalog is shared and is the truth. :class:`SyncedIndex` wraps the
backend and remembers the catalog generation its content reflects; before each search,
count or id listing it asks the catalog for its generation (one indexed read) and, when
another process wrote since, applies just the faces added and removed after that generation
(:meth:`Catalog.changes_since`). Changes this process wrote itself are left out: their
callers (the ingest runner, an erasure) apply them to the index right after the commit.

A distributed backend (a Milvus cluster) is one store every process writes, so there is no
copy to bring up to date: it is only reconciled on open.

Search stays safe in between: the searcher drops every id the catalog no longer holds, so
an erased face is never returned even before a refresh drops its vector.

Saving writes a stamp beside the index (``catalog-sync.json``: the generation the saved
content reflects, and the one its writer stamped before) under a file lock that every save,
rebuild, compaction and reload takes. Opening reconciles from the stamp: the changes after
it, and removals from the stamp before (an own write committed just before a save may not
have reached the files yet); then, with no stale vector left, equal counts mean equal ids.
Where there is no stamp, the log cannot answer, or the counts still differ, every id is
compared. Files another process replaced (a FAISS rebuild or compaction, see
:class:`~faceindex.index.maintenance.Reloadable`) are reloaded before anything is applied.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from faceindex.catalog.base import Catalog, CatalogChanges
from faceindex.errors import InputError, StorageError
from faceindex.index.base import Capabilities, Metric, VectorIndex
from faceindex.index.faiss_options import atomic_write
from faceindex.index.maintenance import Batches, IndexStats, Maintainable, Reloadable

__all__ = ["STAMP_FILE", "SyncedIndex", "compare_all"]

log = logging.getLogger(__name__)
STAMP_FILE = "catalog-sync.json"
FETCH = 10_000  # embeddings read from the catalog per step of a catch-up


class SyncedIndex:
    """A :class:`VectorIndex` (and :class:`Maintainable`) over ``inner`` that follows the
    catalog. Thread-safe for searches; changes are serialised by one lock."""

    def __init__(self, inner: VectorIndex, catalog: Catalog, directory: Path) -> None:
        self.inner = inner
        self.catalog = catalog
        self.dim: int = inner.dim
        self.metric: Metric = inner.metric
        directory.mkdir(parents=True, exist_ok=True)
        self.stamp_path = directory / STAMP_FILE
        self._lock_path = directory / f"{STAMP_FILE}.lock"
        self.generation = -1  # unknown until reconcile()
        self._mutate = threading.RLock()
        self._closed = False
        self._stamped = -1  # the generation this object last stamped (or started from)
        self._replayed = (0, 0)  # (added, removed) by the last _replay
        self._reloadable_of: object = None  # the inner the cached target was found under
        self._reload_target: Reloadable | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self.inner.capabilities = value

    # -- VectorIndex --------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._mutate:
            self.inner.add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        with self._mutate:
            return self.inner.remove(ids)

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        self.refresh()
        return self.inner.search(queries, k, within=within)

    def count(self) -> int:
        self.refresh()
        return self.inner.count()

    def ids(self) -> np.ndarray:
        self.refresh()
        return self.inner.ids()

    def save(self) -> None:
        """Catch up with the catalog, save the backend, stamp the generation it reflects."""
        with self._mutate, self._file_lock():
            self._reload_if_replaced()
            if self.generation >= 0:
                self._catch_up()
            self.inner.save()
            self._write_stamp()

    def close(self) -> None:
        """Save and close; closing again does nothing (an app and its test may both)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.generation >= 0:
                self.save()
        finally:
            self.inner.close()

    # -- following the catalog ----------------------------------------------------------

    def refresh(self) -> tuple[int, int]:
        """Apply what other processes changed since the last look; (added, removed)."""
        if self.generation < 0 or self.inner.capabilities.distributed:
            return 0, 0  # a store every process writes (a Milvus cluster) has no copy to sync
        if not self._replaced() and self.catalog.generation() == self.generation:
            return 0, 0  # the usual case: one indexed read, no lock
        with self._mutate:
            if self._replaced():
                with self._file_lock():
                    self._reload_if_replaced()
            return self._catch_up()

    def reconcile(self, *, full: bool = False) -> tuple[int, int]:
        """Make the index hold exactly the catalog's faces (on open: after a crash, another
        process's writes, or a lost index). From the saved stamp when there is one and the
        counts then agree; else (or with ``full``) every id is compared."""
        with self._mutate, self._file_lock():
            stamp = None if full else self._read_stamp()
            added = removed = 0
            agreed = False
            if stamp is not None and self._replay(*stamp):
                added, removed = self._replayed
                agreed = self.inner.count() == self.catalog.count_faces()
            if not agreed:
                more, fewer = self._compare_all()
                added, removed = added + more, removed + fewer
                self._stamped = self.generation
            if added or removed or stamp is None or stamp[0] != self.generation:
                if added or removed:
                    log.warning(
                        "index reconciled with catalog: %d added, %d removed", added, removed
                    )
                self.inner.save()
                self._write_stamp()
            return added, removed

    def _replay(self, generation: int, replay_from: int) -> bool:
        """Bring files stamped at ``generation`` up to the catalog; False if it cannot say.

        A writer's own changes commit before they reach its index, so one committed just
        before a save may be stamped but missing from the files. Removals are replayed from
        the writer's stamp before (``replay_from``): then no stale vector is left, and any
        missing one shows in the count, which the caller compares."""
        self.generation = self._stamped = generation
        early = self.catalog.changes_since(replay_from, include_own=True)
        changes = self.catalog.changes_since(generation, include_own=True)
        if not (early.complete and changes.complete):
            return False
        stale = np.setdiff1d(early.removed, changes.removed)
        removed = self.inner.remove(stale) if len(stale) else 0
        added, more = self._apply(changes)
        self._replayed = (added, removed + more)
        return True

    def _catch_up(self, *, include_own: bool = False) -> tuple[int, int]:
        changes = self.catalog.changes_since(self.generation, include_own=include_own)
        if not changes.complete:
            log.warning("catalog generation %d is unknown: comparing every id", self.generation)
            return self._compare_all()
        return self._apply(changes)

    def _apply(self, changes: CatalogChanges) -> tuple[int, int]:
        removed = self.inner.remove(changes.removed) if len(changes.removed) else 0
        added = 0
        for start in range(0, len(changes.added), FETCH):
            vecs = self.catalog.embeddings(changes.added[start : start + FETCH].tolist())
            if vecs:  # faces removed since are absent
                ids = np.fromiter(vecs, dtype=np.int64, count=len(vecs))
                self.inner.add(ids, np.stack([vecs[int(i)] for i in ids]))
                added += len(ids)
        if added or removed:
            log.info(
                "index follows catalog generation %d: %d added, %d removed",
                changes.generation,
                added,
                removed,
            )
        self.generation = changes.generation
        return added, removed

    def _compare_all(self) -> tuple[int, int]:
        generation = self.catalog.generation()  # first: later writes are caught up after
        added, removed = compare_all(self.inner, self.catalog)
        self.generation = generation
        return added, removed

    # -- files another process replaced -------------------------------------------------

    def _backend(self) -> object:
        """The backend itself, under any wrapper that keeps it as ``inner`` (a lock)."""
        target: object = self.inner
        while not isinstance(target, (Reloadable, Maintainable)) and hasattr(target, "inner"):
            target = target.inner
        return target

    def _reloadable(self) -> Reloadable | None:
        # Found once per wrapper (a Protocol isinstance costs tens of us on every search).
        if self._reloadable_of is not self.inner:
            target = self._backend()
            self._reload_target = target if isinstance(target, Reloadable) else None
            self._reloadable_of = self.inner
        return self._reload_target

    def _replaced(self) -> bool:
        target = self._reloadable()
        return target is not None and target.replaced_on_disk()

    def _reload_if_replaced(self) -> None:
        """(Under the file lock.) Reload replaced files, then catch up from their stamp,
        this process's own changes included: the files hold none of them."""
        target = self._reloadable()
        if target is None or not target.replaced_on_disk():
            return
        log.warning("index files were replaced by another process: reloading them")
        target.reload()
        stamp = self._read_stamp()
        replayed = stamp is not None and self._replay(*stamp)
        if not replayed or self.inner.count() != self.catalog.count_faces():
            self._compare_all()

    # -- upkeep (Maintainable) ------------------------------------------------------------

    def stats(self) -> IndexStats:
        backend = self._backend()
        if isinstance(backend, Maintainable):
            return backend.stats()
        return IndexStats(
            kind=type(self.inner).__name__, count=self.count(), ram_bytes=0, disk_bytes=0
        )

    def rebuild(self, batches: Batches, *, kind: str | None = None) -> int:
        """Refill the index from ``batches`` (the catalog's embeddings, read lazily),
        retraining compressed codes where the backend has them; ``kind`` (flat, ivf, auto)
        applies to FAISS. What the catalog gains meanwhile is caught up after."""
        with self._mutate, self._file_lock():
            generation = self.catalog.generation()  # before the first batch is read
            if isinstance(self.inner, Maintainable):
                n = self.inner.rebuild(batches, kind=kind)
            else:
                if kind is not None:
                    raise InputError(f"--kind applies to faiss indexes, not {self.inner!r}")
                self.inner.remove(self.inner.ids())
                n = 0
                for ids, vecs in batches:
                    self.inner.add(ids, vecs)
                    n += len(ids)
            self.generation = generation
            self._catch_up(include_own=True)
            self.inner.save()
            self._write_stamp()
            return n

    def compact(self) -> int:
        """Physically drop removed vectors (where the backend keeps any); returns how many."""
        with self._mutate, self._file_lock():
            self._reload_if_replaced()
            dropped = self.inner.compact() if isinstance(self.inner, Maintainable) else 0
            self._write_stamp()
            return dropped

    # -- the stamp and the lock -----------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes: saves, rebuilds, compactions and reloads."""
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open {self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_stamp(self) -> tuple[int, int] | None:
        """(generation the saved files reflect, generation its writer stamped before)."""
        try:
            data = json.loads(self.stamp_path.read_text())
            generation = int(data["generation"])
            return generation, min(int(data.get("replay_from", generation)), generation)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.stamp_path, exc)
            return None

    def _write_stamp(self) -> None:
        if self.generation < 0:
            return
        replay_from = self._stamped if 0 <= self._stamped <= self.generation else self.generation
        text = json.dumps({"generation": self.generation, "replay_from": replay_from})
        atomic_write(self.stamp_path, lambda tmp: tmp.write_text(text))
        self._stamped = self.generation


def compare_all(index: VectorIndex, catalog: Catalog) -> tuple[int, int]:
    """Every id of the index against every live id of the catalog (minutes at 100M): drop
    what the catalog no longer holds, add what it holds and the index lacks."""
    held = index.ids()
    live = catalog.live_face_ids()
    extra = np.setdiff1d(held, live)
    removed = index.remove(extra) if len(extra) else 0
    missing = set(np.setdiff1d(live, held).tolist())
    added = 0
    if missing:
        for ids, vecs in catalog.iter_embeddings():
            mask = np.fromiter((i in missing for i in ids.tolist()), dtype=bool, count=len(ids))
            if mask.any():
                index.add(ids[mask], vecs[mask])
                added += int(mask.sum())
    return added, removed
