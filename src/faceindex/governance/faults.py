"""Fault injection for crash tests: a seam the erasure calls at its named points.

The default, :data:`NO_FAULTS`, does nothing. :class:`KillAt` SIGKILLs its own process when
one of its points is reached; :class:`RaiseAt` raises :class:`FaultInjected` there (the
same crash seen in-process). The CLI builds a :class:`KillAt` only from the test hook
``FACEINDEX_TEST_KILL_AT`` (comma-separated points), which nothing sets outside tests.

Points of an erasure, in order: ``erasure-intent`` (the intent is written, nothing is
deleted yet), ``erasure-committed`` (the catalog rows are gone; vectors, checkpoint and
receipt are still to come), ``erasure-compacted`` (the index is saved; no receipt yet).
Of an ingest: ``ingest-screened`` (a batch passed the tombstone screen, under the erasure
lock, and is not committed yet).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Mapping
from typing import Protocol

from faceindex.errors import ConfigError

__all__ = [
    "NO_FAULTS",
    "POINTS",
    "FaultInjected",
    "FaultPoints",
    "KillAt",
    "RaiseAt",
    "faults_from_env",
]

POINTS = ("erasure-intent", "erasure-committed", "erasure-compacted", "ingest-screened")
ENV = "FACEINDEX_TEST_KILL_AT"


class FaultInjected(Exception):
    """Raised by :class:`RaiseAt`: the in-process stand-in for a crash."""


class FaultPoints(Protocol):
    def reached(self, point: str) -> None: ...


class _NoFaults:
    def reached(self, point: str) -> None:
        return None


NO_FAULTS: FaultPoints = _NoFaults()


def _known(points: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(p.strip() for p in points if p.strip())
    unknown = wanted - set(POINTS)
    if unknown:
        raise ConfigError(f"unknown fault points {sorted(unknown)}: known are {POINTS}")
    return wanted


class KillAt:
    def __init__(self, points: Iterable[str]) -> None:
        self.points = _known(points)

    def reached(self, point: str) -> None:
        if point in self.points:
            os.kill(os.getpid(), signal.SIGKILL)


class RaiseAt:
    def __init__(self, points: Iterable[str]) -> None:
        self.points = _known(points)

    def reached(self, point: str) -> None:
        if point in self.points:
            raise FaultInjected(point)


def faults_from_env(env: Mapping[str, str] | None = None) -> FaultPoints:
    """The CLI's seam: :class:`KillAt` for ``FACEINDEX_TEST_KILL_AT``, else no faults."""
    spec = (os.environ if env is None else env).get(ENV, "")
    return KillAt(spec.split(",")) if spec.strip() else NO_FAULTS
