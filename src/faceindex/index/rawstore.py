"""The exact vectors behind a compressed index: an append-only float32 file, memory-mapped,
and a sorted id -> row map.

The IVF-PQ codes only rank candidates; the distances users see are recomputed from these
rows. The rows stay on disk (the OS pages in the few read per query), so RAM holds only the
map: 16 bytes per face (8-byte ids, 4-byte rows while the file holds under 2**31 of them,
and, while the ids are dense, a 4-byte row per id of their range, looked up directly).
Re-adding an id appends a new row and leaves the old one as garbage until
:meth:`RawStore.compact`. ``idmap.npz`` is the commit point: rows written after the last
:meth:`save` are ignored when the store is opened again.

Several processes may hold the same directory (a server and a CLI ingest): rows are
appended at the end of the file as it is on disk, under an exclusive lock, so no process
overwrites rows another one's map points at; rows no saved map names are garbage.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from faceindex.errors import StorageError
from faceindex.index import hugepages
from faceindex.index.faiss_options import atomic_write

__all__ = ["RawStore"]

log = logging.getLogger(__name__)
MAP_FILE = "idmap.npz"
PAGE = mmap.PAGESIZE
PREFETCH_ROWS = 65536  # rows asked for together (a training sample comes in blocks)
# lookup by a table of one row per id of the ids' range while that range is at most this
# many times the ids: 100M faces, 1M sorted ids, 22 ms against 575 ms by binary search
# over the sorted ids (each level a cache miss; docs/BENCHMARKS.md). A restricted search
# looks up every id of its set, a search its 1000 candidates.
TABLE_SPREAD = 2
NARROW = np.iinfo(np.int32).max  # rows and ids past this keep 8-byte slots (no table)


class RawStore:
    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim
        self._row_bytes = 4 * dim
        self.keys = np.zeros(0, dtype=np.int64)  # sorted face ids
        self.slots = np.zeros(0, dtype=np.int32)  # row of each key in the vectors file
        # row of id base + i at [i] (-1: none) for i < span, while the ids are dense
        self._table: np.ndarray | None = None
        self._base = self._span = 0
        self._table_checked = False  # whether _table is what the current keys call for
        self.rows = 0  # rows committed or appended since
        self.generation = 0
        self._mm: np.memmap | None = None
        self._advisable: mmap.mmap | None = None  # the map's mmap, where madvise exists
        path = directory / MAP_FILE
        if path.exists():
            try:
                with np.load(path) as data:
                    self.keys, self.slots = data["keys"], _narrow(data["slots"])
                    self.rows, self.generation = int(data["rows"]), int(data["generation"])
            except (OSError, KeyError, ValueError) as exc:
                raise StorageError(f"cannot read {path}: {exc}") from exc
            size = self.vectors_path.stat().st_size if self.vectors_path.exists() else 0
            if size < self.rows * self._row_bytes:
                raise StorageError(
                    f"{self.vectors_path} is shorter than {path} records: "
                    "run 'faceindex index build' to rebuild the index from the catalog"
                )

    @property
    def vectors_path(self) -> Path:
        return self.directory / f"vectors.{self.generation}.f32"

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def garbage(self) -> int:
        return self.rows - len(self.keys)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id (any shape), -1 where absent."""
        if not len(self.keys):
            return np.full(np.shape(ids), -1, dtype=np.int64)
        table = self._row_table()
        if table is not None:
            off = np.asarray(ids, dtype=np.int64) - self._base
            inside = (off >= 0) & (off < min(self._span, len(table)))  # (a concurrent append)
            rows = table[np.where(inside, off, 0)]
            return np.where(inside, rows, -1).astype(np.int64, copy=False)
        pos = np.minimum(np.searchsorted(self.keys, ids), len(self.keys) - 1)
        return np.where(self.keys[pos] == ids, self.slots[pos], -1).astype(np.int64, copy=False)

    def lookup_sorted(self, ids: np.ndarray) -> np.ndarray:
        """``lookup`` of ascending ids: with the table and every id in its range (checked
        on the first and last), one gather with no masks, rows as 4-byte integers (a
        restricted code scan looks up its whole set: 500k ids, 3 ms against 8)."""
        table = self._row_table()
        if table is not None and len(ids):
            span = min(self._span, len(table))
            if int(ids[0]) >= self._base and int(ids[-1]) - self._base < span:
                return table[ids - self._base]
        return self.lookup(ids)

    @property
    def direct(self) -> bool:
        """Whether ids are looked up in a table (dense ids) rather than by binary search."""
        return self._dense_span() > 0

    def _dense_span(self) -> int:
        """The ids' range while they are dense enough for the table (and fit its 4-byte
        rows), else 0."""
        keys = self.keys
        if not len(keys) or keys[0] < 0 or int(keys[-1]) >= NARROW or self.rows >= NARROW:
            return 0
        span = int(keys[-1] - keys[0]) + 1
        return span if span <= TABLE_SPREAD * len(keys) else 0

    def _row_table(self) -> np.ndarray | None:
        """The id -> row table, built on first use while the ids are dense enough."""
        if not self._table_checked:
            self._table, self._base, self._span = None, 0, self._dense_span()
            if self._span:
                self._base = int(self.keys[0])
                self._table = hugepages.empty((self._span,), np.int32)
                self._table.fill(-1)
                self._table[self.keys - self._base] = self.slots
            self._table_checked = True
        return self._table

    def _table_set(self, ids: np.ndarray, rows: np.ndarray | int) -> None:
        """Keep a built table in step with the map: ``ids`` now at ``rows`` (-1: gone).
        Ids below its base, past the narrow range or too sparse for it: built anew (or
        dropped) at the next lookup."""
        table = self._table
        if not len(ids):
            return
        if table is None:  # none yet, or the ids were sparse: check again at the next lookup
            self._table_checked = False
            return
        top = int(ids.max()) - self._base + 1
        if ids.min() < self._base or top + self._base > NARROW or self.rows >= NARROW:
            self._table_checked = False
            return
        if top > self._span:
            if top > TABLE_SPREAD * len(self.keys):
                self._table_checked = False
                return
            if top > len(table):  # grown by a quarter at a time: appends stay amortised
                table = hugepages.empty((max(top, len(table) * 5 // 4 + 1024),), np.int32)
                table.fill(-1)
                table[: self._span] = self._table[: self._span]  # type: ignore[index]
                self._table = table
            self._span = top
        table[ids - self._base] = rows

    def append(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Store vectors under ids (already de-duplicated, not present in the map)."""
        path = self.vectors_path
        data = np.ascontiguousarray(vecs, dtype=np.float32).tobytes()
        # A missing file with rows recorded means another process compacted it away.
        flags = os.O_RDWR | (os.O_CREAT if self.rows == 0 else 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise StorageError(
                f"cannot write {path}: {exc} (replaced by another process? reopen the index)"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            start = max(self.rows, -(-size // self._row_bytes))  # past every row written
            offset, view = start * self._row_bytes, memoryview(data)
            while view:
                done = os.pwrite(fd, view, offset)
                offset, view = offset + done, view[done:]
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc
        finally:
            os.close(fd)
        new_slots = np.arange(start, start + len(ids), dtype=np.int64)
        self.rows = start + len(ids)
        in_order = len(ids) and bool(np.all(np.diff(ids) > 0))
        if in_order and (not len(self.keys) or ids[0] > self.keys[-1]):
            self.keys = np.concatenate([self.keys, ids])  # the usual case: catalog ids grow
            self.slots = _narrow(np.concatenate([self.slots, new_slots]))
        else:
            keys = np.concatenate([self.keys, ids])
            order = np.argsort(keys, kind="stable")
            slots = np.concatenate([self.slots.astype(np.int64), new_slots])[order]
            self.keys, self.slots = keys[order], _narrow(slots)
        self._table_set(np.asarray(ids, dtype=np.int64), new_slots)

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Drop ids from the map; returns the ones that were present."""
        if not len(self.keys) or not len(ids):
            return np.zeros(0, dtype=np.int64)
        present = np.isin(self.keys, ids)
        gone = self.keys[present]
        if len(gone):
            self.keys, self.slots = self.keys[~present], self.slots[~present]
            self._table_set(gone, -1)
        return gone

    def vectors(self, slots: np.ndarray) -> np.ndarray:
        """The rows at ``slots`` (any shape), as float32 of shape slots.shape + (dim,)."""
        flat = slots.reshape(-1).astype(np.int64, copy=False)  # offsets pass 2**31 bytes
        mm = self._map()
        order = np.argsort(flat)  # ascending offsets: friendlier to the page cache and disk
        out = np.empty((len(flat), self.dim), dtype=np.float32)
        for start in range(0, len(order), PREFETCH_ROWS):
            part = order[start : start + PREFETCH_ROWS]
            self._prefetch(flat[part])
            out[part] = mm[flat[part]]
        return out.reshape(slots.shape + (self.dim,))

    def prefetch(self, slots: np.ndarray) -> None:
        """Ask the disk for the rows at ``slots`` (any order, -1 skipped) without waiting:
        a later :meth:`vectors` of them finds them read (40 cold rows: ~10 ms on this box's
        disk, done in the background)."""
        rows = np.unique(slots[slots >= 0])
        if len(rows):
            self._map()
            self._prefetch(rows)

    def _prefetch(self, rows: np.ndarray) -> None:
        """Ask the kernel for every page holding ``rows`` (sorted) at once. A gallery larger
        than the page cache is read from disk at re-rank time; page faults one row after the
        other cost 270-730 ms for 200 rows on this box's disk, one WILLNEED per page lets the
        disk serve them together: 2.5 ms (docs/BENCHMARKS.md)."""
        raw = self._advisable
        if raw is None or not len(rows):
            return
        first = (rows * self._row_bytes) // PAGE
        last = ((rows + 1) * self._row_bytes - 1) // PAGE
        pages = np.unique(np.concatenate([first, last]))
        breaks = np.flatnonzero(np.diff(pages) != 1) + 1  # one call per run of pages
        starts, ends = pages[np.r_[0, breaks]], pages[np.r_[breaks - 1, len(pages) - 1]]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            raw.madvise(mmap.MADV_WILLNEED, start * PAGE, (end - start + 1) * PAGE)

    def _map(self) -> np.ndarray:
        """The vectors file mapped read-only; re-mapped once rows were appended past it."""
        if self.rows == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._mm is None or self._mm.shape[0] < self.rows:
            shape = (self.rows, self.dim)
            self._mm = np.memmap(self.vectors_path, dtype=np.float32, mode="r", shape=shape)
            raw = getattr(self._mm, "_mmap", None)
            self._advisable = raw if hasattr(raw, "madvise") else None
            if self._advisable is not None:  # no read-ahead: a row is all a fault needs
                self._advisable.madvise(mmap.MADV_RANDOM)
        return self._mm

    def iter_live(self, chunk: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every live id, in file order. Reads the file rather than the
        map, so a full pass does not leave the whole file mapped into this process."""
        order = np.argsort(self.slots, kind="stable")
        if not len(order):
            return
        try:
            with open(self.vectors_path, "rb") as fh:
                for start in range(0, len(order), chunk):
                    part = order[start : start + chunk]
                    rows = self.slots[part].astype(np.int64)
                    lo, hi = int(rows[0]), int(rows[-1]) + 1
                    fh.seek(lo * self._row_bytes)
                    span = np.fromfile(fh, dtype=np.float32, count=(hi - lo) * self.dim)
                    yield self.keys[part], span.reshape(-1, self.dim)[rows - lo]
        except OSError as exc:
            raise StorageError(f"cannot read {self.vectors_path}: {exc}") from exc

    def sample(self, n: int, seed: int = 1234) -> np.ndarray:
        """Up to n live vectors chosen at random (sorted rows: sequential-ish reads)."""
        take = min(n, len(self.slots))
        rows = np.sort(np.random.default_rng(seed).choice(self.slots, take, replace=False))
        return self.vectors(rows)

    def save(self) -> None:
        path = self.vectors_path
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    keys=self.keys,
                    slots=self.slots,
                    rows=np.int64(self.rows),
                    generation=np.int64(self.generation),
                )

        atomic_write(self.directory / MAP_FILE, write)

    def compact(self) -> int:
        """Rewrite the vectors file with live rows only, in id order; returns rows dropped."""
        dropped = self.garbage
        old = self.vectors_path
        mm = self._map()
        self.generation += 1
        new = self.vectors_path
        try:
            with open(new, "wb") as fh:
                for start in range(0, len(self.keys), 65536):
                    fh.write(self.vectors(self.slots[start : start + 65536]).tobytes())
        except OSError as exc:
            raise StorageError(f"cannot write {new}: {exc}") from exc
        self.slots = _narrow(np.arange(len(self.keys), dtype=np.int64))
        self.rows = len(self.keys)
        self._table_checked = False
        self._mm = self._advisable = None
        del mm
        self.save()  # the map names the new generation: from here on it is the truth
        old.unlink(missing_ok=True)
        log.info("raw vectors compacted: %d rows dropped", dropped)
        return dropped

    def ram_bytes(self) -> int:
        """The map's RAM, its table counted whether or not a lookup has built it yet (its
        spare capacity is never touched)."""
        return int(self.keys.nbytes + self.slots.nbytes + 4 * self._dense_span())

    def disk_bytes(self) -> int:
        files = [self.vectors_path, self.directory / MAP_FILE]
        return sum(p.stat().st_size for p in files if p.exists())


def _narrow(slots: np.ndarray) -> np.ndarray:
    """Rows as 4-byte integers while they fit (half the RAM of the map's second array)."""
    if len(slots) and int(slots.max()) >= NARROW:
        return slots.astype(np.int64, copy=False)
    return slots.astype(np.int32, copy=False)
