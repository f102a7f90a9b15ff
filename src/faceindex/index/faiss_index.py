"""``faiss:///dir``: exact search while the gallery is small, IVF-PQ with exact re-ranking
past ``ivf_threshold`` faces, one directory and one class for both.

The directory tells which kind it holds: ``faces.faiss`` (exact, the original format, so
existing homes open unchanged) or ``idmap.npz`` + ``vectors.N.f32`` + ``ivf.faiss`` (IVF).
``index.json`` keeps the options; see :mod:`faceindex.index.faiss_options` for the URL
parameters. ``disk-epoch`` counts the times the files were replaced (rebuild, compaction,
kind switch, training; every save of on-disk lists, which change in place), so another
process holding the index knows to reload it (:class:`~faceindex.index.maintenance.Reloadable`).
Kind changes happen in :meth:`FaissIndex.save` (automatic) or :meth:`FaissIndex.rebuild`
(``faceindex index build``), never in the middle of a search.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from faceindex.errors import ConfigError, StorageError
from faceindex.index.base import Capabilities, Metric, as_ids, as_vectors, as_within
from faceindex.index.faiss_flat import FLAT_FILE, FlatStore
from faceindex.index.faiss_ivf import IvfStore
from faceindex.index.faiss_options import FaissOptions, atomic_write, read_json
from faceindex.index.maintenance import Batches, IndexStats
from faceindex.index.refine import shared_pool

__all__ = ["FaissIndex"]

log = logging.getLogger(__name__)
OPTIONS_FILE = "index.json"
EPOCH_FILE = "disk-epoch"


class FaissIndex:
    """A FAISS index in a directory. ``capabilities.exact`` is true while it is the flat kind;
    the IVF kind re-ranks with exact distances but may miss a neighbour (recall < 1)."""

    def __init__(
        self,
        directory: Path | str,
        dim: int,
        metric: Metric = "l2",
        options: FaissOptions | None = None,
        *,
        query: str = "",
    ) -> None:
        self.dim = dim
        self.metric: Metric = metric
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        stored = self.directory / OPTIONS_FILE
        base = FaissOptions.from_dict(read_json(stored)) if stored.exists() else FaissOptions()
        self.options = FaissOptions.parse(query, options or base)
        self._epoch = self._disk_epoch()
        self._store: FlatStore | IvfStore
        self.capabilities = Capabilities(
            exact=True, supports_delete=True, persistent=True, distributed=False
        )
        has_ivf = IvfStore.exists(self.directory)
        if has_ivf:
            self._store = IvfStore(self.directory, dim, metric, self.options)
        else:
            self._store = FlatStore(self.directory, dim, metric)
        if has_ivf and self.options.kind == "flat":
            self._switch("flat")
        elif not has_ivf and self.options.kind == "ivf":
            self._switch("ivf")
        self._refresh()

    @classmethod
    def from_url(cls, url: str, *, dim: int, metric: Metric = "l2") -> FaissIndex:
        parsed = urlparse(url)
        raw = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        if parsed.scheme != "faiss" or not raw:
            raise ConfigError(f"{url!r} is not a faiss:///directory URL")
        return cls(Path(raw), dim, metric, query=parsed.query)

    # -- files shared with other processes (Reloadable) ------------------------------------

    def _disk_epoch(self) -> int:
        try:
            return int((self.directory / EPOCH_FILE).read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {self.directory / EPOCH_FILE}: {exc}") from exc

    def _bump_epoch(self) -> None:
        self._epoch = max(self._epoch, self._disk_epoch()) + 1
        text = str(self._epoch)
        atomic_write(self.directory / EPOCH_FILE, lambda tmp: tmp.write_text(text))

    def replaced_on_disk(self) -> bool:
        return self._disk_epoch() != self._epoch

    def reload(self) -> None:
        """Open the directory's files again as they now are (unsaved changes are dropped)."""
        stored = self.directory / OPTIONS_FILE
        if stored.exists():
            self.options = FaissOptions.from_dict(read_json(stored))
        self._epoch = self._disk_epoch()
        if IvfStore.exists(self.directory):
            self._store = IvfStore(self.directory, self.dim, self.metric, self.options)
        else:
            self._store = FlatStore(self.directory, self.dim, self.metric)
        self._refresh()

    @property
    def kind(self) -> str:
        if isinstance(self._store, FlatStore):
            return "flat"
        return "ivf-pq" if self._store.index is not None else "ivf-untrained"

    def _refresh(self) -> None:
        """Exact while flat, or while the IVF kind is still untrained (it scans raw vectors)."""
        exact = isinstance(self._store, FlatStore) or self._store.index is None
        self.capabilities = Capabilities(
            exact=exact, supports_delete=True, persistent=True, distributed=False
        )

    # -- VectorIndex ------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vecs = as_vectors(vectors, self.dim)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        if len(ids):
            self._store.add(ids, vecs)

    def remove(self, ids: np.ndarray) -> int:
        return self._store.remove(as_ids(ids))

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if k < 1:
            raise ValueError("k must be at least 1")
        q = as_vectors(queries, self.dim)
        keep = as_within(within, shared_pool())
        if keep is None:
            return self._store.search(q, k)
        return self._store.search_within(q, k, keep)

    def count(self) -> int:
        return self._store.count()

    def ids(self) -> np.ndarray:
        return self._store.ids()

    def save(self) -> None:
        """Persist, then apply the automatic triggers: switch to IVF past the threshold,
        train once there is enough to train on, retrain once the gallery outgrew it."""
        in_place = isinstance(self._store, IvfStore) and self._store.storage == "disk"
        if in_place and self._store.dirty:
            self._bump_epoch()  # on-disk lists changed in place: other copies are stale
        self._store.save()
        n = self._store.count()
        if isinstance(self._store, FlatStore):
            if self.options.kind == "auto" and n >= self.options.ivf_threshold:
                log.warning("%d faces: switching %s to IVF-PQ", n, self.directory)
                self._switch("ivf")
        elif self._store.needs_training:
            self._bump_epoch()
            log.warning(
                "%d faces, trained on %d: (re)training %s",
                n,
                self._store.trained_on,
                self.directory,
            )
            self._store.train()
        elif self._store.needs_compaction:
            log.warning("%d stale codes in %s: compacting", self._store.stale, self.directory)
            self._bump_epoch()
            self._store.compact()
        self._refresh()

    def close(self) -> None:
        self.save()

    # -- upkeep (faceindex index ...) -------------------------------------------------------

    def retrain_refine(self) -> int:
        """Re-train the IVF kind's RAM tier alone with these options (IvfStore.retrain_refine);
        other processes holding the directory read it again before they change it."""
        if not isinstance(self._store, IvfStore):
            raise StorageError(f"{self.directory} is a flat index: it has no refine codes")
        self._bump_epoch()
        return self._store.retrain_refine()

    def stats(self) -> IndexStats:
        s = self._store
        trained = s.trained_on if isinstance(s, IvfStore) else 0
        opts = self.options.to_dict()
        opts["configured_kind"] = opts.pop("kind")
        details: dict[str, object] = {"directory": str(self.directory), **opts}
        if isinstance(s, IvfStore):
            details.update(s.describe())
        return IndexStats(
            kind=self.kind,
            count=s.count(),
            ram_bytes=s.ram_bytes(),
            disk_bytes=s.disk_bytes(),
            trained_on=trained,
            needs_retrain=isinstance(s, IvfStore) and s.needs_training,
            garbage=max(s.raw.garbage, s.stale) if isinstance(s, IvfStore) else 0,
            details=details,
        )

    def rebuild(self, batches: Batches, *, kind: str | None = None) -> int:
        """Empty the index, re-add every batch, and retrain: ``kind`` flat, ivf or auto."""
        if kind is not None and kind != self.options.kind:
            self.options = FaissOptions.parse(f"kind={kind}", self.options)
        self._bump_epoch()
        self._wipe()
        self._store = FlatStore(self.directory, self.dim, self.metric)
        want_ivf = self.options.kind == "ivf"
        if want_ivf:
            self._store = IvfStore(self.directory, self.dim, self.metric, self.options)
        for ids, vecs in batches:
            self.add(ids, vecs)
            if (
                not want_ivf
                and self._store.count() >= self.options.ivf_threshold
                and self.options.kind == "auto"
            ):
                self._switch("ivf")  # stream the rest straight into the raw-vector file
                want_ivf = True
        self._save_options()
        self._store.dirty = True
        if isinstance(self._store, IvfStore) and self._store.count() >= 256:
            self._store.train()
        self._store.save()
        self._refresh()
        return self._store.count()

    def compact(self) -> int:
        """Drop garbage rows (re-added or removed faces) and rewrite the files."""
        if isinstance(self._store, FlatStore):
            self._store.dirty = True  # FAISS flat removal is already physical
            self._store.save()
            return 0
        self._bump_epoch()
        return self._store.compact()

    # -- kind switching ---------------------------------------------------------------------

    def _switch(self, kind: str) -> None:
        """Move every vector into a store of the other kind (train it if large enough)."""
        self._bump_epoch()
        old = self._store
        if kind == "ivf":
            new: FlatStore | IvfStore = IvfStore(
                self.directory, self.dim, self.metric, self.options
            )
        else:
            (self.directory / FLAT_FILE).unlink(missing_ok=True)
            new = FlatStore(self.directory, self.dim, self.metric)
        for ids, vecs in old.iter_live() if isinstance(old, FlatStore) else old.raw.iter_live():
            new.add(ids, vecs)
        new.dirty = True
        if isinstance(new, IvfStore) and new.needs_training:
            new.train()
        new.save()
        self._store = new
        self._save_options()
        self._drop_other_kind()
        self._refresh()

    def _wipe(self) -> None:
        for pattern in ("faces.faiss", "ivf.*", "vectors.*.f32", "idmap.npz", "*.tmp"):
            for p in self.directory.glob(pattern):
                p.unlink()

    def _drop_other_kind(self) -> None:
        if isinstance(self._store, IvfStore):
            (self.directory / FLAT_FILE).unlink(missing_ok=True)
        else:
            for pattern in ("ivf.*", "vectors.*.f32", "idmap.npz"):
                for p in self.directory.glob(pattern):
                    p.unlink()

    def _save_options(self) -> None:
        text = json.dumps(self.options.changed(), indent=1)
        atomic_write(self.directory / OPTIONS_FILE, lambda tmp: tmp.write_text(text))
