"""Which faces each account has been shown, so images are served only through a result.

A thumbnail or an original is fetched as ``/v1/searches/{search}/faces/{face}/...``: the
search must be the caller's own and the face must have been among its results. Face ids
alone therefore cannot be used to walk the gallery. Kept in memory for ``ttl_s``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from faceindex.errors import NotFoundError

__all__ = ["ShownFaces"]


@dataclass(frozen=True)
class _Shown:
    owner: str
    faces: frozenset[int]
    at: float


class ShownFaces:
    def __init__(
        self,
        *,
        ttl_s: float = 24 * 3600,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._by_id: OrderedDict[str, _Shown] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, owner: str, face_ids: Iterable[int]) -> str:
        """Remember a result set; returns its id."""
        search_id = secrets.token_hex(12)
        entry = _Shown(owner, frozenset(int(f) for f in face_ids), self._clock())
        with self._lock:
            self._by_id[search_id] = entry
            while len(self._by_id) > self.max_entries:
                self._by_id.popitem(last=False)
        return search_id

    def check(self, owner: str, search_id: str, face_id: int) -> None:
        """Raise NotFoundError unless ``owner`` was shown ``face_id`` in ``search_id``."""
        with self._lock:
            entry = self._by_id.get(search_id)
            if entry is not None and self._clock() - entry.at > self.ttl_s:
                del self._by_id[search_id]
                entry = None
        if entry is None or entry.owner != owner:
            raise NotFoundError(f"no search {search_id!r}")
        if face_id not in entry.faces:
            raise NotFoundError(f"face {face_id} is not among the results of this search")
