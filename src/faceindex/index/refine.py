"""Refine codes: the RAM tier between the IVF kind's fast-scan codes and its raw vectors.

A search takes ``refine_rerank`` (1000) candidates from the fast-scan lists, ranks them on
these finer codes held in RAM, and reads exact float32 vectors from the raw file only for
the best ``refine_exact`` of them (``benchmarks/search.py``; docs/BENCHMARKS.md). At 100M
faces the raw file does not fit in the page cache, so each exact row is a random disk read:
the tier trades most of them for a RAM lookup.

Kinds: ``pca`` (a PCA rotation onto ``2 * refine_m`` dimensions, then an 8-bit product
quantizer of ``refine_m`` bytes on pairs of them: 40 B by default), ``pq`` (8-bit product
quantizer on the raw dimensions, ``refine_m`` bytes: 32 by default), ``sq4`` (dim/2 bytes)
and ``sq8`` (dim bytes) scalar quantizers. At 100M faces (cold raw rows, 1000 candidates
from 512 lists; ``benchmarks/refine_codecs.py``) pca 40 B alone reached with 30 exact reads
the recall@10 that pq 32 B, averaged with the fast-scan distance, reached with 100 (0.989
against 0.985), for 8 more bytes a face: the default. The IVF kind then holds 96 B a face.

The codes sit one per raw row (row ``i``'s code at byte ``i * code_size`` of
``ivf.refine.G.R.codes``, G the codec's generation, R the raw file's), written when the row
is appended and fsynced before the id map commits; so a deleted face's code is unreachable
at once, like its raw row, and compaction rewrites both. A codes file shorter than the raw
rows (a crash between the two writes) is completed from the raw vectors when opened; one
missing for the current raw generation (a crash inside a compaction) is rebuilt from them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from faceindex.errors import ConfigError, StorageError
from faceindex.index import hugepages
from faceindex.index.base import Metric
from faceindex.index.faiss_flat import load_faiss
from faceindex.index.faiss_options import atomic_write

T = TypeVar("T")

__all__ = ["REFINE_KINDS", "RefineCodes", "shared_pool"]

log = logging.getLogger(__name__)
REFINE_KINDS = ("none", "pca", "pq", "sq4", "sq8")
# Kinds whose distance is averaged with the fast-scan one (they err apart, and each alone is
# coarse). The finer codes rank better alone: at 100M, 40 exact reads gave recall@10 0.993
# for pca 40 B alone against 0.980 averaged, while the mean lifted pq 32 B from 0.900 to
# 0.956 at 50 reads (benchmarks/refine_codecs.py; docs/BENCHMARKS.md).
BLENDED = ("pq", "sq4")
# Exact rows read per query by default (``refine_exact=0``): at 100M, cold rows, 1000
# candidates, the reads each kind needs for the recall@10 of 200 exact reads without the
# tier (0.974) or better: pca 40 B 0.993 with 40; pq 32 B 0.985 with 100 (0.956 with 50);
# sq4 0.992 with 100 (benchmarks/refine_codecs.py); sq8 0.993 with 20 (an offline run of
# the same method on 300 probes; docs/BENCHMARKS.md).
EXACT_READS = {"pca": 40, "pq": 100, "sq4": 100, "sq8": 20}
QUERY_CHUNK = 32  # queries scored together: bounds the (queries, candidates, dim) block
SCAN_SHARE_MIN = 32768  # a restricted code scan is split over the cores in shares this big
ENCODE_ROWS = 65536


def code_bytes(kind: str, m: int, dim: int) -> int:
    """``refine_m`` as configured, or (0) from the dimension: pca 5/16 of it (40 B at 128-d,
    the 100M measurement's choice: the IVF kind then holds 96 B a face), pq a quarter."""
    if m:
        return m
    return dim * 5 // 16 if kind == "pca" else dim // 4


class RawRows(Protocol):
    rows: int

    def lookup(self, ids: np.ndarray) -> np.ndarray: ...
    def vectors(self, slots: np.ndarray) -> np.ndarray: ...


class RefineCodes:
    """A trained codec and the code of every raw row, in RAM."""

    def __init__(self, directory: Path, codec: Any, gen: int, raw_gen: int, kind: str) -> None:
        self.directory, self.codec, self.gen, self.raw_gen = directory, codec, gen, raw_gen
        self.kind = kind
        self.code_size = int(codec.sa_code_size())
        self._buf = np.zeros((0, self.code_size), dtype=np.uint8)
        self.rows = 0  # rows of _buf that hold codes
        self._centroids: np.ndarray | None = None  # PQ codebooks (M, 256, dsub), else None
        self._rotation: np.ndarray | None = None  # pca: (2m, dim) onto the PQ's dimensions
        self._shift: np.ndarray | None = None  # pca: b of A x + b (b = -A mean)
        f = load_faiss()
        if kind == "pca":
            pca = f.downcast_VectorTransform(codec.chain.at(0))
            self._rotation = f.vector_to_array(pca.A).reshape(pca.d_out, pca.d_in)
            self._shift = f.vector_to_array(pca.b).astype(np.float32)  # A x + b
            inner = f.downcast_index(codec.index)
        else:
            inner = codec
        if kind in ("pq", "pca"):
            pq = inner.pq
            flat = f.vector_to_array(pq.centroids)
            self._centroids = flat.reshape(pq.M, pq.ksub, pq.dsub).astype(np.float32)

    # -- making and opening -----------------------------------------------------------------

    @classmethod
    def trained(
        cls, directory: Path, kind: str, m: int, metric: Metric, sample: np.ndarray, gen: int,
        raw_gen: int,
    ) -> RefineCodes:  # fmt: skip
        """A codec of ``kind`` trained on ``sample`` (no codes yet); its file is written."""
        f = load_faiss()
        dim = sample.shape[1]
        m = code_bytes(kind, m, dim)
        metric_type = f.METRIC_L2 if metric == "l2" else f.METRIC_INNER_PRODUCT
        if kind == "pq":
            if dim % m:
                raise ConfigError(f"refine_m={m} must divide the dimension {dim}")
            codec = f.IndexPQ(dim, m, 8, metric_type)  # m bytes a face, as configured
            codec.pq.cp.min_points_per_centroid = 1  # small galleries: no FAISS warning spam
        elif kind == "pca":
            if 2 * m > dim:
                raise ConfigError(f"refine=pca needs refine_m <= {dim // 2}, not {m}")
            pq = f.IndexPQ(2 * m, m, 8, metric_type)  # pairs of rotated dimensions, a byte each
            pq.pq.cp.min_points_per_centroid = 1
            codec = f.IndexPreTransform(f.PCAMatrix(dim, 2 * m, 0, True), pq)
            pq.this.disown()
        elif kind in ("sq4", "sq8"):
            qtype = f.ScalarQuantizer.QT_4bit if kind == "sq4" else f.ScalarQuantizer.QT_8bit
            codec = f.IndexScalarQuantizer(dim, qtype, metric_type)
        else:
            raise ConfigError(f"refine must be one of {', '.join(REFINE_KINDS)}, not {kind!r}")
        codec.train(sample)
        out = cls(directory, codec, gen, raw_gen, kind)
        atomic_write(out.codec_path, lambda tmp: f.write_index(codec, str(tmp)))
        out.codes_path.unlink(missing_ok=True)
        return out

    @classmethod
    def opened(
        cls, directory: Path, gen: int, raw: RawRows, raw_gen: int, kind: str
    ) -> RefineCodes:
        """The codec of generation ``gen`` and the codes of every raw row, completed from
        the raw vectors where the codes file lacks some."""
        path = directory / f"ivf.refine.{gen}.faiss"
        try:
            codec = load_faiss().read_index(str(path))
        except RuntimeError as exc:
            raise StorageError(f"cannot read {path} ({exc}); run 'faceindex index build'") from exc
        out = cls(directory, codec, gen, raw_gen, kind)
        have = 0
        if out.codes_path.exists():
            have = min(out.codes_path.stat().st_size // out.code_size, raw.rows)
            out._buf = hugepages.empty((have, out.code_size), np.uint8)
            try:
                hugepages.read_into(out.codes_path, out._buf)
            except OSError as exc:
                raise StorageError(f"cannot read {out.codes_path}: {exc}") from exc
            out.rows = have
        if have < raw.rows:
            log.warning(
                "%s: %d of %d raw rows have no refine code: encoding them",
                directory, raw.rows - have, raw.rows,
            )  # fmt: skip
            for start in range(have, raw.rows, ENCODE_ROWS):
                slots = np.arange(start, min(start + ENCODE_ROWS, raw.rows), dtype=np.int64)
                out.put(slots, raw.vectors(slots))
        return out

    @property
    def codec_path(self) -> Path:
        return self.directory / f"ivf.refine.{self.gen}.faiss"

    @property
    def codes_path(self) -> Path:
        return self.directory / f"ivf.refine.{self.gen}.{self.raw_gen}.codes"

    # -- writing ----------------------------------------------------------------------------

    def put(self, slots: np.ndarray, vecs: np.ndarray) -> None:
        """Encode ``vecs`` as the codes of raw rows ``slots`` (ascending, contiguous runs
        in the usual case), in RAM and in the codes file."""
        if not len(slots):
            return
        self.place(slots, self.codec.sa_encode(np.ascontiguousarray(vecs, dtype=np.float32)))

    def place(self, slots: np.ndarray, codes: np.ndarray) -> None:
        """Store ready ``codes`` as those of raw rows ``slots``, in RAM and in the file."""
        if not len(slots):
            return
        top = int(slots.max()) + 1
        if top > len(self._buf):
            grown = hugepages.empty(
                (max(top, len(self._buf) * 5 // 4 + 1024), self.code_size), np.uint8
            )
            grown[: self.rows] = self._buf[: self.rows]
            self._buf = grown
        self._buf[slots] = codes
        self.rows = max(self.rows, top)
        self._write(slots, codes)

    def _write(self, slots: np.ndarray, codes: np.ndarray) -> None:
        breaks = np.flatnonzero(np.diff(slots) != 1) + 1
        try:
            fd = os.open(self.codes_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write {self.codes_path}: {exc}") from exc
        try:
            for run, part in zip(np.split(slots, breaks), np.split(codes, breaks), strict=True):
                view, offset = memoryview(part.tobytes()), int(run[0]) * self.code_size
                while view:
                    done = os.pwrite(fd, view, offset)
                    offset, view = offset + done, view[done:]
        except OSError as exc:
            raise StorageError(f"cannot write {self.codes_path}: {exc}") from exc
        finally:
            os.close(fd)

    def remapped(self, raw_gen: int, old_slots: np.ndarray) -> RefineCodes:
        """The codes after a raw compaction: new row ``i`` held old row ``old_slots[i]``;
        written to the codes file of raw generation ``raw_gen``."""
        out = RefineCodes(self.directory, self.codec, self.gen, raw_gen, self.kind)
        out.codes_path.unlink(missing_ok=True)
        for start in range(0, len(old_slots), ENCODE_ROWS):
            part = old_slots[start : start + ENCODE_ROWS]
            new = np.arange(start, start + len(part), dtype=np.int64)
            out.place(new, self._buf[part])
        return out

    def save(self) -> None:
        """fsync the codes (before the id map commits the rows they belong to)."""
        if not self.codes_path.exists():
            return
        fd = os.open(self.codes_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def drop_others(self) -> None:
        """Delete the codec and codes files of other generations (once the state naming
        this one is saved)."""
        keep = {self.codec_path.name, self.codes_path.name}
        for old in self.directory.glob("ivf.refine.*"):
            if old.name not in keep and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)

    # -- searching --------------------------------------------------------------------------

    def shortlist(
        self,
        q: np.ndarray,
        cand: np.ndarray,
        coarse: np.ndarray,
        raw: RawRows,
        keep: int,
        metric: Metric,
    ) -> np.ndarray:
        """The ``keep`` best of each row of candidate ids ``cand`` (n, m), -1 for ids the
        id map does not know (deleted: never returned). A candidate's score is the mean of
        its fast-scan distance ``coarse`` and its distance to its refine code: the two
        quantizers err apart, and on a 1M dlib-like gallery the mean kept recall@10 at 0.991
        reading 50 exact rows of 1000, where either score alone gave 0.955 (fast-scan) or
        0.972 (pq 32) (docs/BENCHMARKS.md)."""
        if cand.shape[1] <= keep:
            return cand
        out = np.full((len(q), keep), -1, dtype=np.int64)
        for s in range(0, len(q), QUERY_CHUNK):
            order = np.argsort(cand[s : s + QUERY_CHUNK], axis=1)
            cc = np.take_along_axis(cand[s : s + QUERY_CHUNK], order, axis=1)
            first = np.take_along_axis(coarse[s : s + QUERY_CHUNK], order, axis=1)
            slots = raw.lookup(cc)
            dup = np.zeros(cc.shape, dtype=bool)
            dup[:, 1:] = cc[:, 1:] == cc[:, :-1]
            valid = (cc >= 0) & (slots >= 0) & (slots < self.rows) & ~dup
            codes = self._buf[np.where(valid, slots, 0)]
            refined = self._distances(q[s : s + QUERY_CHUNK], codes, metric)
            if self.kind in BLENDED:
                refined = 0.5 * (refined + first)
            scores = refined if metric == "l2" else -refined
            scores[~valid] = np.inf
            best = np.argpartition(scores, keep - 1, axis=1)[:, :keep]
            out[s : s + len(cc)] = np.take_along_axis(np.where(valid, cc, -1), best, axis=1)
        return out

    def _distances(self, q: np.ndarray, codes: np.ndarray, metric: Metric) -> np.ndarray:
        """(n, m) squared L2 distances or inner products between queries q (n, d) and codes
        (n, m, code_size). PQ: looked up in each query's table of sub-distances in numpy,
        no FAISS call (FAISS's decode runs an OpenMP region, which costs more than these
        1000 lookups whenever another process holds the cores). SQ: decoded."""
        n, m = codes.shape[:2]
        q = self._rotated(q, metric)
        if self._centroids is None:
            approx = self.codec.sa_decode(codes.reshape(-1, self.code_size)).reshape(n, m, -1)
            if metric == "l2":
                diff = approx - q[:, None, :]
                return np.einsum("nmd,nmd->nm", diff, diff)
            return np.einsum("nmd,nd->nm", approx, q)
        cent = self._centroids  # (M, ksub, dsub)
        sub = q.reshape(n, cent.shape[0], 1, cent.shape[2])
        l2 = metric == "l2"
        tables = ((sub - cent[None]) ** 2).sum(-1) if l2 else (sub * cent[None]).sum(-1)
        rows = np.arange(n)[:, None, None]
        return tables[rows, np.arange(cent.shape[0])[None, None, :], codes].sum(-1)

    def _rotated(self, q: np.ndarray, metric: Metric) -> np.ndarray:
        """Queries in the space the codes live in: for pca, its kept dimensions. Codes hold
        A (x - mean); L2 to them differs from L2 in the full space by the part of q off
        the kept dimensions, and the inner product with A q by <q, A^T A mean>: either is
        the same for every candidate of a query, so the order is kept."""
        if self._rotation is None or self._shift is None:
            return q
        turned = q @ self._rotation.T
        return (turned + self._shift if metric == "l2" else turned).astype(np.float32)

    def scan(
        self, q: np.ndarray, ids: np.ndarray, keep: int, rows: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """The ``keep`` best of face ``ids`` per query by distance to their codes (ids, -1
        past the end), ``rows`` giving each id's raw row (-1: none, skipped): a restricted
        search over a set too small for the IVF scan to pay. PQ kinds: each core looks up
        a share of the set, gathers its codes and FAISS scans them in place (100M faces,
        1M ids on one core: 22 ms to look up, 40-60 to gather, 40 to scan); SQ: FAISS scans
        a copy of the codec holding only the gathered codes."""
        f = load_faiss()
        metric: Metric = "l2" if self.codec.metric_type == f.METRIC_L2 else "ip"
        turned = np.ascontiguousarray(self._rotated(q, metric), dtype=np.float32)

        def live(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            slots = rows(part)
            ok = (slots >= 0) & (slots < self.rows)
            return part[ok], slots[ok]

        if self._centroids is None:
            ids, slots = live(ids)
            if not len(ids):
                return np.full((len(q), keep), -1, dtype=np.int64)
            scratch = f.clone_index(self.codec)
            # np.take, not self._buf[slots]: 5x faster on (n, 32) rows (100k: 2 ms, not 10)
            scratch.add_sa_codes(np.take(self._buf, slots, axis=0))
            pos = np.asarray(scratch.search(turned, keep)[1], dtype=np.int64)
            return np.where(pos >= 0, ids[np.maximum(pos, 0)], -1)

        def share(whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            part, slots = live(whole)
            if not len(part):  # none of these ids is held
                none = np.full((len(q), keep), -1, dtype=np.int64)
                return np.full((len(q), keep), np.inf, dtype=np.float32), none
            dist, pos = self._pq_search(turned, np.take(self._buf, slots, axis=0), keep)
            return dist, np.where(pos >= 0, part[np.maximum(pos, 0)], -1)

        found = in_shares(share, ids)
        dist = np.concatenate([d for d, _ in found], axis=1)
        best_ids = np.concatenate([b for _, b in found], axis=1)
        dist = np.where(best_ids >= 0, dist if metric == "l2" else -dist, np.inf)
        best = np.argsort(dist, axis=1, kind="stable")[:, :keep]
        return np.take_along_axis(best_ids, best, axis=1)

    def _pq_search(
        self, q: np.ndarray, codes: np.ndarray, keep: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's PQ scan of ``codes`` (n, code_size) for queries already in the codes'
        space: the ``keep`` best (distances, positions; -1 where fewer)."""
        f = load_faiss()
        inner = self.codec if self._rotation is None else f.downcast_index(self.codec.index)
        dist = np.empty((len(q), keep), dtype=np.float32)
        pos = np.empty((len(q), keep), dtype=np.int64)
        l2 = self.codec.metric_type == f.METRIC_L2
        heap = f.float_maxheap_array_t() if l2 else f.float_minheap_array_t()
        heap.nh, heap.k = len(q), keep
        heap.ids, heap.val = f.swig_ptr(pos), f.swig_ptr(dist)
        codes = np.ascontiguousarray(codes)
        search = inner.pq.search if l2 else inner.pq.search_ip
        search(f.swig_ptr(q), len(q), f.swig_ptr(codes), len(codes), heap, True)
        return dist, pos

    def ram_bytes(self) -> int:
        return int(self.rows * self.code_size)


def in_shares(fn: Callable[[np.ndarray], T], ids: np.ndarray) -> list[T]:
    """``fn`` of each of up to one share a core of ``ids`` (in order, each at least
    ``SCAN_SHARE_MIN`` long), the shares on the cores at once."""
    shares = max(1, min(load_faiss().omp_get_max_threads(), len(ids) // SCAN_SHARE_MIN))
    if shares == 1:
        return [fn(ids)]
    bounds = np.linspace(0, len(ids), shares + 1).astype(np.int64)
    parts = [ids[int(a) : int(b)] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return list(shared_pool().map(fn, parts))


@cache
def shared_pool() -> ThreadPoolExecutor:
    """Threads a restricted search shares its work over (numpy's gather and FAISS's scans
    release the GIL), one a core FAISS may use."""
    return ThreadPoolExecutor(load_faiss().omp_get_max_threads(), "refine-scan")
