"""The compressed FAISS kind: IVF-PQ codes to find candidates, exact vectors to rank them.

Per face, RAM holds a ``pq_m``-byte PQ code and an 8-byte id in the inverted lists, plus
16 bytes of id map (:mod:`faceindex.index.rawstore`): 56 bytes with the default pq_m=32.
The float32 vectors stay in a memory-mapped file and only the ``rerank`` best candidates
of a query are read back, so the distances returned are exact (true L2, or inner product).

With ``storage=disk`` the inverted lists are FAISS ``OnDiskInvertedLists`` too, paged in by
the OS: the gallery may exceed RAM. They change in place, so a marker file records unsaved
changes and an index opened after a crash re-fills its lists from the raw vectors.

Until the gallery reaches ``train_min`` faces there is nothing to train on: searches scan
the raw vectors exactly. Deletes drop the id from the map at once (so it can never be
returned) and from the lists with ``remove_ids`` (IVF supports it; HNSW would not).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.errors import ConfigError, StorageError
from faceindex.index.base import Metric
from faceindex.index.faiss_coarse import (
    is_nested,
    new_quantizer,
    ready,
    search_params,
    train_nested,
)
from faceindex.index.faiss_flat import empty_result, load_faiss
from faceindex.index.faiss_options import FaissOptions, atomic_write, auto_nlist, read_json
from faceindex.index.id_lists import ANY, NONE, IdLists
from faceindex.index.rawstore import MAP_FILE, RawStore
from faceindex.index.refine import (
    BLENDED,
    EXACT_READS,
    RefineCodes,
    in_shares,
    shared_pool,
)
from faceindex.index.rerank import exact_scan, rerank

__all__ = ["IVF_FILE", "IvfStore"]

log = logging.getLogger(__name__)
IVF_FILE = "ivf.faiss"
STATE_FILE = "ivf.json"
DIRTY_FILE = "ivf.dirty"
SMALL_TRAIN = 50_000  # train on one thread below this (10x faster on a busy 2-core box)
STALE_FRACTION = 0.1  # compact automatically once this share of the codes is stale
# restricted: scan a set's refine codes up to this share of the codes the IVF scan visits.
# Measured at 100M (docs/BENCHMARKS.md), ids looked up by binary search: the code scan
# cost ~0.8 us an id (38 ms at 10k, 169 ms at 100k, 828 ms at 1M ids), the IVF scan with a
# selector ~205 ms whatever the set (3.1M codes visited): they cross near 1/25 of the
# visited codes. With dense ids (the id map's direct table) and the scan shared over the
# cores it costs ~60 ns an id (cold rows: 52 ms at 500k, 84 at 1M). There the set's faces
# in the probed lists alone (restricted=lists, index/id_lists.py) cost less from the
# smallest sets up (100M faces, cold rows: 100k ids 19.7 ms against 24.9, 200k 23.1 against
# 28.3, 700k 35.9 against 59.8), but the code scan sees the whole set (recall@10 against
# the exact scan of the set 1.000, against 0.995-0.998), so it keeps the sets that cost it
# no more than about the unrestricted search (1.16x at 200k ids, 1/16 of the codes
# visited); lists then up to a third of the codes visited (1.0M ids at 100M: 45.6 ms
# against the filter's 48.5; at 2M 62.5 against 44.9), the filter beyond.
SET_SCAN_SHARE = 1 / 32
SET_SCAN_SHARE_DIRECT = 1 / 16
LISTS_SHARE = 1 / 3
FASTSCAN_OVER_LISTS = 14  # FAISS fast-scan implementation: threads share one query's lists
# ... while a query fetches at most this many: merging the threads' heaps grows with the
# fetch (1M faces, one query: 1.9 ms against 2.1 at 1000, 4.3 against 2.5 at 4096, 42
# against 8 at 65536 for implem 0), so the restricted filter's large fetches do without
SPLIT_FETCH_MAX = 2048
READ_AHEAD_MIN_LISTS = 8  # fewer probed lists: one scan, nothing worth reading ahead
READ_AHEAD_MAX_QUERIES = 8  # ... and larger batches scan in one call
# ... and a larger fetch split by list over the cores runs FAISS's reservoir variant of
# implementation 10 in each share (100M faces, 256 lists a share: 16.2 ms at 6k, 24.1 at
# 57k, against 17.5 and 26.1 for its automatic choice, 22.4 and 60.5 for 10)
WIDE_IMPLEM = 11
BITMAP_MAX_BYTES = 64 << 20  # restricted search: id bitmaps up to 512M ids, else a hash set
BITMAPS_KEPT = 4  # the last restricted sets' bitmaps kept for the next search of the same set
# membership of the filter's candidates: a bitmap once candidates x this pass the set's size
BITMAP_PER_CANDIDATES = 512
MEMBER_BLOCK = 1024  # membership without a bitmap: a binary search in blocks of this many
MEMBER_TWO_LEVEL = 1 << 20  # ... for sets past this many ids (8 MB: out of cache)
# restricted, larger sets: the unrestricted scan fetches enough of the gallery's best that
# a set spread like the gallery should hold the W candidates a search takes plus
# FILTER_SIGMAS standard deviations (W + 4 sqrt W: 1126 of 1000, 257 of 200), then keeps
# the set's (no selector: with one, fast-scan tests every code's id against the set, a cache
# miss per code once the id bitmap outgrows L2: 6x the scan at 100M). Worth it while that
# fetch is at most FILTER_SHARE of the codes the scan visits: on 1M faces with 100M-range
# ids the filter cost 1.85x the unrestricted search at 9% of them against the selector's
# 2.56x, and tied with it at 45% (docs/BENCHMARKS.md).
FILTER_SIGMAS = 4
FILTER_SHARE = 1 / 4
FILTER_BATCH = 1 << 22  # candidates fetched at once (48 MB of ids and distances)


class IvfStore:
    def __init__(self, directory: Path, dim: int, metric: Metric, opts: FaissOptions) -> None:
        self._faiss = load_faiss()
        self.directory, self.dim, self.metric, self.opts = directory, dim, metric, opts
        self.raw = RawStore(directory, dim)
        state = read_json(directory / STATE_FILE) if (directory / STATE_FILE).exists() else {}
        self.trained_on = int(state.get("trained_on", 0))
        self.lists_gen = int(state.get("lists_gen", 0))
        self.storage = str(state.get("storage", opts.storage))
        self.refine_gen = int(state.get("refine_gen", 0))
        self.refine: RefineCodes | None = None  # the RAM tier (index/refine.py)
        self.index: Any = None
        self.dirty = False
        self._bits = _SetBits()
        self._listing: IdLists | None = None  # each face's list, for restricted=lists
        self._listing_lock = threading.Lock()
        if self.trained_on and (directory / IVF_FILE).exists():
            self.index = self._read()
            if self.refine_gen:  # kept up to date whatever this process searches with
                kind = str(state.get("refine_kind", "pq"))
                self.refine = RefineCodes.opened(
                    directory, self.refine_gen, self.raw, self.raw.generation, kind
                )
            if (directory / DIRTY_FILE).exists():
                log.warning("%s was not saved cleanly: re-filling its lists", directory)
                self._refill(self.index)
                self.dirty = True

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / MAP_FILE).exists()

    def _read(self) -> Any:
        try:
            index = self._faiss.read_index(str(self.directory / IVF_FILE))
        except RuntimeError as exc:
            raise StorageError(
                f"cannot read {self.directory / IVF_FILE} ({exc}); "
                "run 'faceindex index build' to rebuild it from the catalog"
            ) from exc
        if index.d != self.dim:
            raise StorageError(f"{self.directory} holds {index.d}-d vectors, not {self.dim}-d")
        return _tuned(index, self.storage)

    # -- the VectorIndex operations ---------------------------------------------------------

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        _, last = np.unique(ids[::-1], return_index=True)
        keep = len(ids) - 1 - last  # one vector per id, the last given; ids now ascending
        ids, vecs = ids[keep], vecs[keep]
        present = self.raw.lookup(ids) >= 0
        if present.any():
            self.remove(ids[present])
        self._mark_dirty()
        self.raw.append(ids, vecs)
        if self.refine is not None:
            self.refine.put(self.raw.lookup(ids), vecs)
        if self.index is not None:
            self.index.add_with_ids(vecs, ids)
            if self._listing is not None and self._listing.index is self.index:
                self._listing.added(ids, vecs)

    def remove(self, ids: np.ndarray) -> int:
        """Forget ids at once (the re-ranker drops codes the map does not know). 8-bit PQ
        lists lose the codes now; fast-scan's packed blocks are rewritten by compaction,
        because FAISS's remove_ids scrambles their other codes (measured on faiss 1.15)."""
        gone = self.raw.remove(ids)
        if len(gone):
            self._mark_dirty()
            if self._listing is not None:
                self._listing.removed(gone)
            if self.index is not None and not self.fastscan:
                self.index.remove_ids(self._faiss.IDSelectorBatch(gone))
        return len(gone)

    @property
    def fastscan(self) -> bool:
        return self.index is not None and "FastScan" in type(self.index).__name__

    @property
    def stale(self) -> int:
        """Codes in the lists whose id was removed or re-added since the last refill."""
        return max(int(self.index.ntotal) - len(self.raw), 0) if self.index is not None else 0

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.raw):
            return empty_result(len(q), k, self.metric)
        if self.index is None:
            return exact_scan(q, self.raw.iter_live(), k, self.metric)
        return self._ivf_search(q, k, int(self.index.ntotal))

    def _ivf_search(
        self, q: np.ndarray, k: int, limit: int, selector: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the codes (at most ``limit``; only ids ``selector`` admits), then
        the k best by exact distance: of all of them, or with the RAM tier of the best
        ``refine_exact`` by distance to their refine codes."""
        fetch = int(min(self._wanted(k) + self.stale, max(limit, 1), 4096))
        params = search_params(self.index, self.nprobe)
        tier = self._tier()
        if selector is not None:
            params.sel = selector
        if selector is None and tier is not None and self._reads_ahead(len(q), fetch):
            coarse, cand = self._scan_reading_ahead(q, k, fetch, params, tier)
        else:
            coarse, cand = self._scan(q, fetch, params)
        return self._ranked(q, k, coarse, cand)

    def _reads_ahead(self, queries: int, fetch: int) -> bool:
        """Whether a search's scan goes in two calls with its rows read in between: on the
        fast-scan lists, for the fetches the split scan serves, with lists to split, for a
        few queries (a large batch asks for all its rows at once anyway, and the second
        call and early ranking cost it throughput: 100M faces, 1000 probes, 76-91 q/s
        against 99)."""
        return (
            self.fastscan
            and self.opts.read_ahead > 0
            and queries <= READ_AHEAD_MAX_QUERIES
            and fetch <= SPLIT_FETCH_MAX
            and self.nprobe >= READ_AHEAD_MIN_LISTS
        )

    def _scan_reading_ahead(
        self, q: np.ndarray, k: int, fetch: int, params: Any, tier: RefineCodes
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_scan``, with the exact rows asked for early. The nearest ``read_ahead`` share of
        the probed lists is scanned first and its best candidates by the refine codes are
        asked of the disk (in the background); the other lists are scanned while it reads.
        At 100M faces, of the 40 rows a search finally reads, 0.888 are among those of its
        nearest 128 of 512 lists, and a query with cold rows took 22.1-24.2 ms p50 against
        25.0-27.0 in one scan (the second call and the early ranking cost ~3 ms of the ~10
        the reads gain; docs/BENCHMARKS.md). The two calls' best ``fetch`` are the single
        scan's best ``fetch``."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        coarse_d, lists = self._probed(q, params)
        first = min(max(1, round(self.opts.read_ahead * self.nprobe)), self.nprobe - 1)
        self.index.implem = FASTSCAN_OVER_LISTS
        near_d, near = self._preassigned(q, fetch, lists[:, :first], coarse_d[:, :first])
        ahead = tier.shortlist(q, near, near_d, self.raw, self._exact_reads(k), self.metric)
        self.raw.prefetch(self.raw.lookup(ahead))
        far_d, far = self._preassigned(q, fetch, lists[:, first:], coarse_d[:, first:])
        dist, ids = np.concatenate([near_d, far_d], axis=1), np.concatenate([near, far], axis=1)
        score = np.where(ids >= 0, dist if self.metric == "l2" else -dist, np.inf)
        order = np.argsort(score, axis=1, kind="stable")[:, :fetch]
        return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1)

    def _wanted(self, k: int) -> int:
        """Candidates a search takes from the fast-scan codes."""
        wanted = self.opts.refine_rerank if self._tier() is not None else self.opts.rerank
        return max(wanted, k)

    def _ranked(
        self, q: np.ndarray, k: int, coarse: np.ndarray, cand: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best of fast-scan candidates ``cand`` (their distances ``coarse``, -1 for
        none) by exact distance, through the RAM tier where it is in use."""
        tier = self._tier()
        if tier is not None:
            keep = self._exact_reads(k)
            cand = tier.shortlist(q, cand, coarse, self.raw, keep, self.metric)
        return rerank(q, cand, self.raw, k, self.metric)

    def _scan(self, q: np.ndarray, fetch: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """The fast-scan (or 8-bit PQ) lists' best ``fetch`` per query. Fast-scan's threads
        share a query's lists only for small fetches (``SPLIT_FETCH_MAX``). The choice is an
        attribute of the shared index: a concurrent search may run under the other one,
        which changes its speed, never its answer."""
        if self.fastscan:
            self.index.implem = FASTSCAN_OVER_LISTS if fetch <= SPLIT_FETCH_MAX else 0
        return self.index.search(q, fetch, params=params)

    def _tier(self) -> RefineCodes | None:
        """The refine codes, where this index has them and the options use them: with
        ``tier=auto`` once the raw file outgrows a quarter of the RAM. Below that its rows
        stay cached and reading ``rerank`` of them exactly is cheap and the most accurate
        (1M faces: recall@10 0.995 against 0.991 through the tier, docs/BENCHMARKS.md)."""
        if self.refine is None or self.opts.refine == "none" or self.opts.tier == "off":
            return None
        if self.opts.tier == "on" or self.raw.rows * 4 * self.dim > _physical_memory() // 4:
            return self.refine
        return None

    def _exact_reads(self, k: int) -> int:
        kind = self.refine.kind if self.refine is not None else self.opts.refine
        return max(self.opts.refine_exact or EXACT_READS.get(kind, 100), k)

    @property
    def set_scan_max(self) -> int:
        """Restricted sets up to this size are scanned on their refine codes rather than
        through the IVF lists with a selector: a share of the codes an unrestricted search
        visits (the selector slows fast-scan ~6x; docs/BENCHMARKS.md), a larger one where
        the ids are looked up in the id map's direct table."""
        if self.opts.set_scan_max:
            return self.opts.set_scan_max
        nlist = self.index.nlist if self.index is not None else 1
        share = SET_SCAN_SHARE_DIRECT if self.raw.direct else SET_SCAN_SHARE
        return int(share * len(self.raw) * self.nprobe / nlist)

    def search_within(
        self, q: np.ndarray, k: int, within: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ``within`` ids only. No more live ids than a search re-ranks: exact over
        their raw vectors (it reads no more rows than the re-rank would). More: the path
        ``opts.restricted`` names, by default (docs/BENCHMARKS.md, "Restricted search past
        20k ids"):

        - ``codes``: with the RAM tier, up to ``set_scan_max`` ids: a scan of the set's refine
          codes, linear in the set;
        - ``lists``: with the RAM tier and dense ids, up to ``LISTS_SHARE`` of the codes a
          search visits: the refine codes of the set's faces in the probed lists only;
        - ``filter``: a set large enough that the gallery's best ``_filter_fetch`` hold
          enough of it: the unrestricted scan, then only the set's candidates are kept;
        - ``selector``: otherwise, the IVF scan skips every id outside the set (a FAISS
          selector), then re-ranks as usual;
        - ``batch`` (only when asked for): the same with FAISS's hash-set selector, whose
          small bloom filter may stay in cache where the id bitmap does not (a candidate
          for sets of 20k-150k at 100M, not measured there).

        (Exact over larger sets costs a random disk read per face once the raw file
        outgrows the page cache: 0.1 ms each on this box's disk, 12 s for 100k faces of a
        100M gallery.)"""
        if self.index is None or len(within) <= max(self.opts.rerank, k):
            ids = within[self.raw.lookup(within) >= 0]
            return exact_scan(q, self._rows_of(ids), k, self.metric)
        path = self._restricted_path(k, len(within))
        if path == "codes":
            return self._scan_codes(q, k, within)
        if path == "lists":
            return self._scan_listed(q, k, within)
        if path == "filter":
            return self._filtered(q, k, within, self._filter_fetch(k, len(within)))
        if path == "batch":
            return self._ivf_search(q, k, len(within), self._faiss.IDSelectorBatch(within))
        selector, bitmap = self._selector(within)  # the bitmap must outlive the search
        found = self._ivf_search(q, k, len(within), selector)
        del bitmap
        return found

    def _restricted_path(self, k: int, n: int) -> str:
        """Which way a set of ``n`` ids (more than the re-rank) is searched."""
        forced = self.opts.restricted
        if forced != "auto":
            return forced
        visited = int(self.index.ntotal) * self.nprobe / self.index.nlist
        tier = self._tier() is not None
        if tier and n <= self.set_scan_max:
            return "codes"
        if tier and self.raw.direct and n <= LISTS_SHARE * visited:
            return "lists"
        return "filter" if self._filter_fetch(k, n) <= FILTER_SHARE * visited else "selector"

    def _filter_fetch(self, k: int, n: int) -> int:
        """Candidates the unrestricted scan fetches for a set of ``n`` ids: enough that a set
        spread like the gallery holds the candidates a search takes (with a margin of
        ``FILTER_SIGMAS`` standard deviations)."""
        listed = int(self.index.ntotal)
        take = self._wanted(k) + self.stale
        fetch = (take + FILTER_SIGMAS * np.sqrt(take)) * listed / max(n, 1)
        return int(min(np.ceil(fetch), max(listed, 1)))

    def _scan_codes(
        self, q: np.ndarray, k: int, within: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The set's refine codes scanned, the best read exactly: the kind's own number, or
        twice it for a kind whose ranking averages in the fast-scan distance (none to
        average with here; docs/BENCHMARKS.md)."""
        tier = self.refine
        if tier is None:
            raise ConfigError("faiss restricted=codes needs refine codes (refine is none)")
        reads = self._exact_reads(k) * (2 if tier.kind in BLENDED else 1)
        cand = tier.scan(q, within, reads, self.raw.lookup_sorted)
        return rerank(q, cand, self.raw, k, self.metric)

    def _scan_listed(
        self, q: np.ndarray, k: int, within: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The refine codes of the set's faces in each query's probed lists only, the best
        read exactly: what the unrestricted search would see of the set, scored by the
        refine codes instead of the fast-scan codes (index/id_lists.py). Linear in the set
        for one gather and a mask (shared over the cores), then in its share the probed
        lists hold (~``nprobe / nlist``). A query whose lists hold fewer than k of the set
        (a set far from it) has the whole set's codes scanned instead."""
        tier = self.refine
        if tier is None:
            raise ConfigError("faiss restricted=lists needs refine codes (refine is none)")
        if not self.raw.direct:  # its table spans the ids' range, 2 bytes an id
            raise ConfigError("faiss restricted=lists needs dense face ids (use filter)")
        with self._listing_lock:  # concurrent searches share one table (8 s to make at 100M)
            listing = self._listing
            if listing is None or listing.index is not self.index:
                listing = self._listing = IdLists(self.index, self.raw)
        q = np.ascontiguousarray(q, dtype=np.float32)
        _, probed = self._probed(q, search_params(self.index, self.nprobe))
        hit = np.zeros((len(q), int(self.index.nlist) + 1), dtype=bool)  # the last: ANY
        for row, lists in enumerate(probed):
            hit[row, lists[lists >= 0]] = True
        hit[:, -1] = True

        def share(part: np.ndarray) -> list[np.ndarray]:
            lists = listing.lists_of(part).astype(np.int64)
            held = lists != NONE
            lists[lists == ANY] = hit.shape[1] - 1
            at = np.where(held, lists, 0)
            return [part[held & mine[at]] for mine in hit]

        picked = in_shares(share, within)
        reads = self._exact_reads(k) * (2 if tier.kind in BLENDED else 1)
        cands = []
        for row in range(len(q)):
            mine = np.concatenate([p[row] for p in picked])
            if len(mine) < k:  # the query's lists hold too few of the set: all of it
                mine = within
            cands.append(tier.scan(q[row : row + 1], mine, reads, self.raw.lookup_sorted))
        return rerank(q, np.vstack(cands), self.raw, k, self.metric)

    def _filtered(
        self, q: np.ndarray, k: int, within: np.ndarray, fetch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The unrestricted scan's best ``fetch`` (or more: see ``_scan_wide``), of them the
        set's best ``take`` by the same fast-scan distance (as the selector path would find
        them), ranked as usual. A query whose fetch held fewer of the set (a set denser
        elsewhere than near it) goes the selector path, so no query gets fewer candidates
        than there."""
        take = int(min(self._wanted(k) + self.stale, len(within), 4096))
        params = search_params(self.index, self.nprobe)
        out_c = np.full((len(q), take), -1, dtype=np.int64)
        out_d = np.full((len(q), take), np.inf if self.metric == "l2" else -np.inf, np.float32)
        short = []
        # queries in groups of at most FILTER_BATCH fetched candidates: a batch of 50 probes
        # fetching 781k each (a 144k-id set at 100M) would hold 0.5 GB and its temporaries
        group = max(1, FILTER_BATCH // fetch)
        for start in range(0, len(q), group):
            coarse, cand = self._scan_wide(q[start : start + group], fetch, params)
            inside = self._members(within, cand)
            for i in range(len(cand)):
                pos = np.flatnonzero(inside[i])
                if len(pos) < take:
                    short.append(start + i)
                elif len(pos) > take:
                    score = coarse[i, pos] if self.metric == "l2" else -coarse[i, pos]
                    pos = pos[np.argpartition(score, take - 1)[:take]]
                out_c[start + i, : len(pos)] = cand[i, pos]
                out_d[start + i, : len(pos)] = coarse[i, pos]
        dist, ids = self._ranked(q, k, out_d, out_c)
        if short:
            log.debug("restricted search: %d of %d queries past the filter", len(short), len(q))
            selector, bitmap = self._selector(within)
            dist[short], ids[short] = self._ivf_search(q[short], k, len(within), selector)
            del bitmap
        return dist, ids

    def _scan_wide(self, q: np.ndarray, fetch: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """The restricted filter's large fetch. Past ``SPLIT_FETCH_MAX`` FAISS scans one
        query on one thread, so each core takes every other of its probed lists
        (``search_preassigned``) and fetches its share of ``fetch`` from them, with the
        filter's margin of ``FILTER_SIGMAS`` standard deviations: the lists of a share are
        interleaved in probe order, so it holds about its share of the best. The
        candidates come unordered (100M faces, 113k fetched: 31 ms against 48 in one
        call; docs/BENCHMARKS.md)."""
        shares = self._faiss.omp_get_max_threads()
        if not self.fastscan or fetch <= SPLIT_FETCH_MAX or shares < 2:
            return self._scan(q, fetch, params)
        fetch = int(np.ceil(fetch / shares + FILTER_SIGMAS * np.sqrt(fetch / shares)))
        q = np.ascontiguousarray(q, dtype=np.float32)
        coarse_d, lists = self._probed(q, params)
        self.index.implem = WIDE_IMPLEM

        def share(j: int) -> tuple[np.ndarray, np.ndarray]:
            return self._preassigned(q, fetch, lists[:, j::shares], coarse_d[:, j::shares])

        found = list(shared_pool().map(share, range(shares)))
        return (
            np.concatenate([d for d, _ in found], axis=1),
            np.concatenate([i for _, i in found], axis=1),
        )

    def _probed(self, q: np.ndarray, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """The coarse quantizer's answer: each query's ``nprobe`` lists, nearest first, and
        their distances."""
        dist, lists = self.index.quantizer.search(
            q, self.nprobe, params=getattr(params, "quantizer_params", None)
        )
        return dist, lists

    def _preassigned(
        self, q: np.ndarray, fetch: int, lists: np.ndarray, coarse: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``fetch`` of the given lists of each query (FAISS ``search_preassigned``
        under the index's current ``implem``). ``q`` must be contiguous float32: FAISS gets
        raw pointers, so every array is held here for the call."""
        f, n = self._faiss, len(q)
        mine = np.ascontiguousarray(lists, dtype=np.int64)
        mine_d = np.ascontiguousarray(coarse, dtype=np.float32)
        dist = np.empty((n, fetch), dtype=np.float32)
        ids = np.empty((n, fetch), dtype=np.int64)
        self.index.search_preassigned_c(
            n, f.swig_ptr(q), fetch, f.swig_ptr(mine), f.swig_ptr(mine_d),
            f.swig_ptr(dist), f.swig_ptr(ids), False,
            f.SearchParametersIVF(nprobe=mine.shape[1]),
        )  # fmt: skip
        return dist, ids

    def _members(self, ids: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Which of ``cand`` (any shape, -1 for none) are among sorted ``ids``: through the
        set's bitmap where one is cached or worth building for the searches of the same
        set to come (at 100M faces: 1M ids take 20 ms to set in a 12.5 MB bitmap and 113k
        candidates 25-54 ms to find by binary search; 10M ids 105 ms, 23k candidates
        13 ms), else by binary search."""
        if not len(ids):
            return np.zeros(cand.shape, dtype=bool)
        bitmap = self._bits.get(ids, build=BITMAP_PER_CANDIDATES * cand.size > len(ids))
        if bitmap is None:
            return _sorted_members(ids, cand)
        ok = (cand >= 0) & (cand < 8 * len(bitmap))
        c = np.where(ok, cand, 0)
        return ok & ((bitmap[c >> 3] >> (c & 7).astype(np.uint8)) & 1).astype(bool)

    def _selector(self, ids: np.ndarray) -> tuple[Any, Any]:
        """A FAISS id selector for sorted ``ids`` (and what must outlive it): a bitmap over
        the id range while that is at most ``BITMAP_MAX_BYTES`` (1M ids of a 100M gallery:
        0.3 s as a hash set, 20 ms as a 12.5 MB bitmap), else a hash set."""
        bitmap = self._bits.get(ids, build=True)
        if bitmap is not None:
            # FAISS takes the bitmap's length in bytes: id i is in iff i // 8 < len
            ptr = self._faiss.swig_ptr(bitmap)
            return self._faiss.IDSelectorBitmap(len(bitmap), ptr), bitmap
        return self._faiss.IDSelectorBatch(ids), None

    def _rows_of(self, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), 65536):
            part = ids[start : start + 65536]
            yield part, self.raw.vectors(self.raw.lookup(part))

    @property
    def nprobe(self) -> int:
        nlist = self.index.nlist if self.index is not None else 1
        # measured on dlib-like galleries: recall@10 >= 0.99 at 1M (nlist 2048, 256 probed)
        # and at 10M (nlist 8192, 512 probed); at 100M (16384) 512 reach 0.973 and 1024
        # 0.977 for 1.2x the time: the re-rank, not the probes, bounds recall there
        return int(min(self.opts.nprobe or min(max(256, nlist // 16), 512), nlist))

    def count(self) -> int:
        return len(self.raw)

    def ids(self) -> np.ndarray:
        return self.raw.keys.copy()

    def save(self) -> None:
        if not self.dirty:
            return
        if self.refine is not None:
            self.refine.save()  # before the map commits the rows these codes belong to
        self.raw.save()  # first: lists may name ids the map lacks (ignored), not the reverse
        if self.index is not None:
            atomic_write(
                self.directory / IVF_FILE,
                lambda tmp: self._faiss.write_index(self.index, str(tmp)),
            )
        self._write_state()
        (self.directory / DIRTY_FILE).unlink(missing_ok=True)
        self._drop_stale_lists()
        if self.refine is not None:
            self.refine.drop_others()
        else:  # trained without the tier: earlier codes are of no use
            for old in self.directory.glob("ivf.refine.*"):
                old.unlink(missing_ok=True)
        self.dirty = False

    # -- training and upkeep ----------------------------------------------------------------

    @property
    def needs_training(self) -> bool:
        n = len(self.raw)
        if self.index is None:
            return n >= self.opts.train_min
        factor = self.opts.retrain_factor
        return bool(factor) and n > factor * self.trained_on

    @property
    def needs_compaction(self) -> bool:
        return self.stale > STALE_FRACTION * max(len(self.raw), 1)

    def train(self) -> None:
        """(Re)train the coarse quantizer and PQ on the current gallery and re-encode it."""
        n = len(self.raw)
        if n < 256:
            raise StorageError(f"IVF-PQ needs at least 256 vectors to train on, not {n}")
        nlist = min(self.opts.nlist or auto_nlist(n), max(1, n // 39))
        sample = self._training_sample(nlist)
        index = self._new_index(nlist, disk=self.opts.storage == "disk", n_train=len(sample))
        log.info(
            "training %s (nlist=%d) on %d of %d vectors",
            type(index).__name__,
            nlist,
            len(sample),
            n,
        )
        small = len(sample) < SMALL_TRAIN
        threads = self._faiss.omp_get_max_threads()
        if small:  # thousands of tiny parallel k-means steps: thread hand-offs dominate
            self._faiss.omp_set_num_threads(1)
        try:
            if is_nested(index.quantizer):
                train_nested(index, sample)
            index.train(sample)
        finally:
            self._faiss.omp_set_num_threads(threads)
        _tuned(index, self.opts.storage)
        self.storage = self.opts.storage
        refine = None
        if self.opts.refine != "none":
            self.refine_gen += 1
            refine = RefineCodes.trained(
                self.directory, self.opts.refine, self.opts.refine_m, self.metric, sample,
                self.refine_gen, self.raw.generation,
            )  # fmt: skip
        self._refill(index, refine)
        self.index, self.trained_on, self.refine = index, n, refine
        self.refine_gen = refine.gen if refine is not None else 0
        self.dirty = True
        self.save()

    def _training_sample(self, nlist: int) -> np.ndarray:
        """Raw vectors to train on: 30 a list, at least 65 536, at most the gallery."""
        return self.raw.sample(min(len(self.raw), max(nlist * 30, 65536)))

    def retrain_refine(self) -> int:
        """Train the RAM tier anew with the options' kind and size, keeping the lists, and
        encode every live raw row into it; returns the rows encoded. What a rebuild does to
        the tier, without re-encoding the lists (a codec change at 100M faces: one pass
        over the raw file, minutes, against the hour of a rebuild)."""
        if self.index is None:
            raise StorageError(f"{self.directory} is not trained yet: nothing to refine")
        if self.opts.refine == "none":
            raise StorageError("refine=none: no tier to train (set refine to pca, pq, ...)")
        n = len(self.raw)
        sample = self._training_sample(self.index.nlist)
        refine = RefineCodes.trained(
            self.directory, self.opts.refine, self.opts.refine_m, self.metric, sample,
            self.refine_gen + 1, self.raw.generation,
        )  # fmt: skip
        for ids, vecs in self.raw.iter_live():
            refine.put(self.raw.lookup(ids), vecs)
        refine.save()  # fsynced before the state names its generation
        self.refine, self.refine_gen = refine, refine.gen
        self._write_state()
        refine.drop_others()
        log.info("%s: refine codes retrained (%s, %d B a face)", self.directory, refine.kind,
                 refine.code_size)  # fmt: skip
        return n

    def _new_index(self, nlist: int, *, disk: bool, n_train: int) -> Any:
        """RAM: 4-bit PQ fast-scan (SIMD, ~6x faster scans than 8-bit PQ at equal code size,
        so many more lists can be probed). Disk: 8-bit PQ, the codes OnDiskInvertedLists
        can page (fast-scan's packed blocks cannot)."""
        f = self._faiss
        metric = f.METRIC_L2 if self.metric == "l2" else f.METRIC_INNER_PRODUCT
        quantizer = new_quantizer(self.dim, self.metric, nlist)
        m = self.opts.pq_m
        if disk:
            nbits = 8 if n_train >= 4096 else 6
            index = f.IndexIVFPQ(quantizer, self.dim, nlist, m, nbits, metric)
        else:
            index = f.IndexIVFPQFastScan(quantizer, self.dim, nlist, 2 * m, 4, metric)
        index.pq.cp.min_points_per_centroid = 1  # small galleries: no FAISS warning spam
        index.cp.min_points_per_centroid = 1
        index.own_fields = True
        quantizer.this.disown()
        return index

    def _refill(self, index: Any, refine: RefineCodes | None = None) -> None:
        """Empty ``index``'s lists (new ones, on disk if asked) and encode every live vector
        (into ``refine`` too, a new codec with no codes yet)."""
        if self.storage == "disk":
            self.lists_gen += 1
            path = self.directory / f"ivf.{self.lists_gen}.ivfdata"
            lists = self._faiss.OnDiskInvertedLists(index.nlist, index.code_size, str(path))
            # one file extension up front: FAISS prints a line each time it grows the file
            lists.update_totsize(int(1.5 * len(self.raw) * (index.code_size + 8)) + (1 << 20))
            index.replace_invlists(lists, True)
            lists.this.disown()
        else:
            index.reset()
        for ids, vecs in self.raw.iter_live():
            index.add_with_ids(vecs, ids)
            if refine is not None:
                refine.put(self.raw.lookup(ids), vecs)

    def _drop_stale_lists(self) -> None:
        """Delete list files of earlier generations (only once the index naming the current
        one is saved)."""
        current = f"ivf.{self.lists_gen}.ivfdata" if self.storage == "disk" else ""
        for old in self.directory.glob("ivf.*.ivfdata"):
            if old.name != current:
                old.unlink(missing_ok=True)

    def compact(self) -> int:
        old_slots = self.raw.slots.copy()  # in id order, as the compacted rows will be
        dropped = self.raw.compact()
        if self.refine is not None:
            self.refine = self.refine.remapped(self.raw.generation, old_slots)
        if self.index is not None and (self.stale or self.storage == "disk"):
            dropped = max(dropped, self.stale)
            self._refill(self.index)  # and OnDiskInvertedLists never shrink their file
            self.dirty = True
        self.dirty = self.dirty or dropped > 0
        self.save()
        return dropped

    def _mark_dirty(self) -> None:
        if not self.dirty and self.storage == "disk" and self.index is not None:
            (self.directory / DIRTY_FILE).touch()
        self.dirty = True

    def _write_state(self) -> None:
        state = {
            "trained_on": self.trained_on,
            "lists_gen": self.lists_gen,
            "storage": self.storage,
            "refine_gen": self.refine_gen,
            "refine_kind": self.refine.kind if self.refine is not None else "none",
        }
        atomic_write(self.directory / STATE_FILE, lambda tmp: tmp.write_text(json.dumps(state)))

    # -- accounting -------------------------------------------------------------------------

    def ram_bytes(self) -> int:
        total = self.raw.ram_bytes()
        if self.index is not None:
            total += self.index.nlist * self.dim * 4  # coarse centroids
            total += self.index.pq.M * self.index.pq.ksub * self.index.pq.dsub * 4
            if self.storage == "ram":  # fast-scan blocks of 32 codes: half a block per list
                total += self.index.ntotal * (self.index.code_size + 8)
                total += self.index.nlist * 16 * self.index.code_size
        if self.refine is not None:
            total += self.refine.ram_bytes()
        if self._listing is not None:
            total += self._listing.ram_bytes()
        return int(total)

    def disk_bytes(self) -> int:
        names = [IVF_FILE, STATE_FILE, f"ivf.{self.lists_gen}.ivfdata"]
        if self.refine is not None:
            names += [self.refine.codec_path.name, self.refine.codes_path.name]
        extra = sum(
            (self.directory / n).stat().st_blocks * 512
            for n in names
            if (self.directory / n).exists()
        )
        return self.raw.disk_bytes() + extra

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "storage": self.storage,
            "nprobe": self.nprobe,
            "rerank": self.opts.rerank,
            "raw_rows": self.raw.rows,
        }
        if self.index is not None:
            quantizer = self._faiss.downcast_index(self.index.quantizer)
            out.update(
                quantizer=f"ivf{quantizer.nlist}" if is_nested(quantizer) else "flat",
                nlist=self.index.nlist,
                pq_m=self.index.pq.M,
                pq_bits=self.index.pq.nbits,
                listed=int(self.index.ntotal),
            )
        if self.refine is not None:
            out.update(
                refine=self.refine.kind,
                tier_in_use=self._tier() is not None,
                refine_code_bytes=self.refine.code_size,
                refine_rerank=self.opts.refine_rerank,
                refine_exact=self._exact_reads(0),
            )
        return out


def _bitmap(ids: np.ndarray) -> np.ndarray | None:
    """One bit per id up to the largest of sorted ``ids`` (bit ``i % 8`` of byte ``i // 8``),
    or None where that would pass ``BITMAP_MAX_BYTES`` (or an id is negative)."""
    if not len(ids) or ids[0] < 0 or int(ids[-1]) + 1 > 8 * BITMAP_MAX_BYTES:
        return None
    bitmap = np.zeros((int(ids[-1]) + 8) // 8, dtype=np.uint8)
    # ids are unique, so adding each one's bit to its byte sets it (7 ms for 1M)
    np.add.at(bitmap, ids >> 3, np.left_shift(1, ids & 7).astype(np.uint8))
    return bitmap


def _sorted_members(ids: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Which of ``cand`` are among sorted ``ids``, by binary search in two levels: every
    ``MEMBER_BLOCK``-th id first (a sample small enough to stay in cache), then within the
    block it names, all candidates a level at a time (10M ids, 12k candidates: 5.9 ms
    against 10.4 for numpy's searchsorted on the sorted candidates, whose 23 levels miss
    the cache; blocks of 256: 13.6 ms, the strided sample costing more)."""
    flat = cand.reshape(-1)
    n = len(ids)
    if n <= MEMBER_TWO_LEVEL:  # the set's ids stay in cache: numpy's search, sorted needles
        order = np.argsort(flat)
        pos = np.minimum(np.searchsorted(ids, flat[order]), n - 1)
        found = np.empty(len(flat), dtype=bool)
        found[order] = ids[pos] == flat[order]
        return found.reshape(cand.shape) & (cand >= 0)
    sample = ids[::MEMBER_BLOCK]
    lo = np.maximum(np.searchsorted(sample, flat, side="right") - 1, 0) * MEMBER_BLOCK
    hi = np.minimum(lo + MEMBER_BLOCK, n)
    while True:  # the first position in [lo, hi) whose id is >= the candidate
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        right = open_ & (ids[np.minimum(mid, n - 1)] < flat)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(open_ & ~right, mid, hi)
    found = ids[np.minimum(lo, n - 1)] == flat
    return found.reshape(cand.shape) & (cand >= 0)


class _SetBits:
    """The bitmaps of the last few restricted sets: a case searches the same sources again
    and again, and at 100M faces a 1M-id set costs 20 ms to set in its 12.5 MB bitmap,
    against 2 ms to compare with the set it was made for. Only an equal set reuses one."""

    def __init__(self, keep: int = BITMAPS_KEPT) -> None:
        self._keep = keep
        self._made: list[tuple[np.ndarray, np.ndarray]] = []

    def get(self, ids: np.ndarray, *, build: bool) -> np.ndarray | None:
        for made_for, kept in list(self._made):
            if len(made_for) == len(ids) and np.array_equal(made_for, ids):
                return kept
        if not build:
            return None
        bitmap = _bitmap(ids)
        if bitmap is not None:
            self._made = [(ids.copy(), bitmap), *self._made][: self._keep]
        return bitmap


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):  # not on this platform: assume the raw file is cached
        return 1 << 62


def _tuned(index: Any, storage: str) -> Any:
    """Split one query's lists over the cores (searches come one probe face at a time):
    ``parallel_mode`` for 8-bit PQ, implementation 14 for fast-scan, whose automatic choice
    scans a single query on one thread (100M faces, 512 lists, 2 cores: 23.4 ms a query
    against 14.5 ms with 14; docs/BENCHMARKS.md). 8-bit PQ on disk: drop its precomputed
    residual tables, nlist * 256 * pq_m floats (268 MB at nlist=8192, pq_m=32: 27 bytes per
    face at 10M) for a small gain per query."""
    index.parallel_mode = 1
    if "FastScan" in type(index).__name__:
        index.implem = FASTSCAN_OVER_LISTS
    ready(index)
    if storage == "disk":
        index.use_precomputed_table = -1
        index.precomputed_table.resize(0)
        lists = load_faiss().downcast_InvertedLists(index.invlists)
        if hasattr(lists, "prefetch_nthread"):  # 32 threads started per query: 2x slower
            lists.prefetch_nthread = 0
    return index
