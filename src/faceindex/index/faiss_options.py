"""Tunables of a ``faiss:///dir`` index, read from URL query parameters and the index's
own ``index.json``; plus the atomic-write helper every FAISS file goes through.

    faiss:///dir                     auto: exact until ``ivf_threshold`` faces, then IVF-PQ
    faiss:///dir?kind=flat           always exact
    faiss:///dir?kind=ivf&nprobe=48  IVF-PQ (exact scan over the raw vectors until trained)
    faiss:///dir?storage=disk        IVF lists memory-mapped from disk (larger than RAM)

Parameters given in the URL win over the ones stored with the index; a rebuild stores the
ones it used, so ``faceindex index build --kind ivf`` persists its choice.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from faceindex.errors import ConfigError, StorageError

__all__ = ["FaissOptions", "atomic_write", "auto_nlist", "fsync_dir", "read_json"]

Kind = Literal["auto", "flat", "ivf"]
RESTRICTED_PATHS = ("auto", "codes", "lists", "filter", "selector", "batch")
Storage = Literal["ram", "disk"]


@dataclass(frozen=True)
class FaissOptions:
    kind: Kind = "auto"
    storage: Storage = "ram"  # disk: OnDiskInvertedLists, paged in by the OS on demand
    ivf_threshold: int = 200_000  # auto: switch from exact to IVF-PQ past this many faces
    train_min: int = 10_000  # fewer faces than this: IVF kind scans raw vectors exactly
    nlist: int = 0  # inverted lists; 0 = chosen from the gallery size at training time
    pq_m: int = 32  # PQ code bytes per face (8-bit sub-quantizers); 128 % pq_m == 0
    nprobe: int = 0  # lists visited per query; 0 = nlist / 16 within [256, 512] (BENCHMARKS.md)
    rerank: int = 200  # candidates re-ranked with exact distances (at least k of them)
    retrain_factor: float = 4.0  # retrain once the gallery is this many times the training set
    # RAM re-rank tier (index/refine.py): refine_rerank candidates ranked on refine codes in
    # RAM, exact float32 read only for the best refine_exact (at least k); none: exact rerank
    # none, pca (refine_m bytes), pq (refine_m bytes), sq4 (dim/2 bytes), sq8 (dim bytes)
    refine: str = "pca"
    refine_m: int = 0  # code bytes of pca and pq; 0 = from the dimension (40 and 32 at 128-d)
    refine_rerank: int = 1000
    refine_exact: int = 0  # 0 = the refine kind's own (refine.EXACT_READS)
    set_scan_max: int = 0  # restricted sets up to this size scan their refine codes; 0 = auto
    # use the tier: on, off, or auto = once the raw vectors outgrow a quarter of the machine's
    # RAM (they will not stay in the page cache, so each exact row is a disk read)
    tier: str = "auto"
    # restricted search (issue 11): the path a set past the re-rank takes; auto = the
    # cheapest measured one (faiss_ivf.py search_within), or codes, lists, filter, selector, batch
    restricted: str = "auto"
    # with the tier in use: the share of a query's lists scanned first, whose best rows by
    # the refine codes the disk is asked for while the rest are scanned; 0 = off
    read_ahead: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "flat", "ivf"):
            raise ConfigError(f"faiss kind must be auto, flat or ivf, not {self.kind!r}")
        if self.storage not in ("ram", "disk"):
            raise ConfigError(f"faiss storage must be ram or disk, not {self.storage!r}")
        if min(self.ivf_threshold, self.train_min, self.pq_m, self.rerank) < 1:
            raise ConfigError("faiss ivf_threshold, train_min, pq_m and rerank must be >= 1")
        if min(self.nlist, self.nprobe, self.retrain_factor) < 0:
            raise ConfigError("faiss nlist, nprobe and retrain_factor must be >= 0")
        if self.tier not in ("auto", "on", "off"):
            raise ConfigError(f"faiss tier must be auto, on or off, not {self.tier!r}")
        if self.refine not in ("none", "pca", "pq", "sq4", "sq8"):
            raise ConfigError(
                f"faiss refine must be none, pca, pq, sq4 or sq8, not {self.refine!r}"
            )
        if self.restricted not in RESTRICTED_PATHS:
            raise ConfigError(
                f"faiss restricted must be one of {', '.join(RESTRICTED_PATHS)}, "
                f"not {self.restricted!r}"
            )
        if not 0 <= self.read_ahead < 1:
            raise ConfigError(f"faiss read_ahead must be in [0, 1), not {self.read_ahead}")
        if self.refine_rerank < 1 or min(self.refine_m, self.refine_exact, self.set_scan_max) < 0:
            raise ConfigError(
                "faiss refine_rerank must be >= 1, refine_m, refine_exact and set_scan_max >= 0"
            )

    @classmethod
    def parse(cls, query: str, base: FaissOptions | None = None) -> FaissOptions:
        """Options from a URL query string over ``base`` (unknown keys are an error)."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in parse_qsl(query, keep_blank_values=True):
            if key not in known:
                raise ConfigError(f"unknown faiss URL parameter {key!r}; known: {sorted(known)}")
            values[key] = _convert(key, raw, known[key])
        return replace(base or cls(), **values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaissOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self) -> dict[str, Any]:
        """Only the options that differ from the defaults: what an index directory stores,
        so that better defaults in a later release still reach existing indexes."""
        default = FaissOptions()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}


def _convert(key: str, raw: str, typ: object) -> Any:
    try:
        if typ in ("int", int):
            return int(raw)
        if typ in ("float", float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"faiss URL parameter {key}={raw!r} is not a number") from exc
    return raw


def auto_nlist(n: int) -> int:
    """A power of two near 2*sqrt(n): lists of ~sqrt(n)/2 faces, quick to train on 2 cores."""
    if n <= 0:
        return 1
    target = 2.0 * math.sqrt(n)
    return int(min(65536, max(1, 2 ** round(math.log2(target)))))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, fsync the file, rename it over ``path``, fsync the folder:
    a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StorageError(f"{path} is not a JSON object")
    return data
