"""Which IVF list holds each face's code: what lets a restricted search score only the
set's faces in the lists it probes.

A case entitled to a few sources may search 0.5-1% of a 100M gallery. Scanning all of the
set's refine codes costs ~80 ns a face (1M ids: ~84 ms with cold rows); filtering the
unrestricted scan needs 1000 of the set among its candidates, which for 700k ids is 161k
candidates (~35 ms of fast-scan). Knowing each face's list, the set's faces in the probed
lists (512 of 16 384 at 100M: ~3-4% of them) are picked out with one gather and a mask,
and only their codes are scored (docs/BENCHMARKS.md, "Restricted search: the set's faces
in the probed lists").

A table over the ids' range (dense ids only, as the id map's direct table: 2 bytes an id
of the range at up to 32 767 lists), in huge pages. It is made from the lists the first
time a search needs it (100M faces: one pass over every list's ids, ~8 s), follows adds
(the coarse quantizer's assignment of the added vectors, which is how FAISS's add assigns
them) and removals, and is made anew for a new index (training; ids and their lists
outlive a compaction of the rows). A face whose id is in two lists (re-added before
compaction removed its stale code) is :data:`ANY`: scored whichever lists are probed.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from faceindex.index import hugepages
from faceindex.index.faiss_flat import load_faiss
from faceindex.index.rawstore import RawStore

__all__ = ["ANY", "NONE", "IdLists"]

NONE = -1  # not held (never added, or removed)
ANY = -2  # codes in more than one list: scored whichever are probed


class IdLists:
    """The list of each face id of ``raw`` in the IVF ``index``, made on first use."""

    def __init__(self, index: Any, raw: RawStore) -> None:
        self.index, self.raw = index, raw
        self._table: np.ndarray | None = None
        self._base = 0
        self._lock = threading.Lock()

    def lists_of(self, ids: np.ndarray) -> np.ndarray:
        """The list of each of ``ids`` (NONE where not held, ANY where in several)."""
        with self._lock:
            if self._table is None:
                self._table, self._base = self._built()
            table, base = self._table, self._base
        off = np.asarray(ids, dtype=np.int64) - base
        inside = (off >= 0) & (off < len(table))
        return np.where(inside, table[np.where(inside, off, 0)], NONE)

    def added(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """``ids`` were just added to the lists with vectors ``vecs`` (a face re-added was
        removed first: its new list, whatever its stale code's until compaction)."""
        with self._lock:
            table = self._table
            if table is None or not len(ids):
                return
            if int(ids.min()) < self._base:  # below the range: made anew when next needed
                self._table = None
                return
            _, lists = self.index.quantizer.search(np.ascontiguousarray(vecs, np.float32), 1)
            off = np.asarray(ids, dtype=np.int64) - self._base
            top = int(off.max()) + 1
            if top > len(table):  # grown by a quarter at a time: appends stay amortised
                grown = hugepages.empty((max(top, len(table) * 5 // 4 + 1024),), table.dtype)
                grown[: len(table)] = table
                grown[len(table) :] = NONE
                self._table = table = grown
            was = table[off]
            table[off] = np.where((was == NONE) | (was == lists[:, 0]), lists[:, 0], ANY)

    def removed(self, ids: np.ndarray) -> None:
        with self._lock:
            table = self._table
            if table is None or not len(ids):
                return
            off = np.asarray(ids, dtype=np.int64) - self._base
            table[off[(off >= 0) & (off < len(table))]] = NONE

    def _built(self) -> tuple[np.ndarray, int]:
        f = load_faiss()
        keys = self.raw.keys
        base = int(keys[0]) if len(keys) else 0
        span = int(keys[-1]) - base + 1 if len(keys) else 0
        nlist = int(self.index.nlist)
        table = hugepages.empty((span,), np.int16 if nlist < 2**15 else np.int32)
        table[:] = NONE
        invlists = self.index.invlists
        for lst in range(nlist):
            size = int(invlists.list_size(lst))
            if not size:
                continue
            ptr = invlists.get_ids(lst)
            ids = np.array(f.rev_swig_ptr(ptr, size), dtype=np.int64)
            invlists.release_ids(lst, ptr)
            ids = ids[self.raw.lookup(ids) >= 0]  # stale codes of removed faces: not held
            off = ids - base
            was = table[off]
            table[off] = np.where(was == NONE, lst, ANY)
        return table, base

    def ram_bytes(self) -> int:
        table = self._table
        return int(table.nbytes) if table is not None else 0
