"""Open the engine and its Governance facade as the configured CLI actor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faceindex.cli.common import open_engine
from faceindex.errors import InputError

__all__ = ["open_governance", "read_photos"]


@contextmanager
def open_governance(home: Path | None, **overrides: Any) -> Iterator[Any]:
    """Yields a :class:`faceindex.governance.service.Governance` acting as Settings.actor."""
    from faceindex.governance.faults import faults_from_env
    from faceindex.governance.service import Governance

    # faults_from_env is a test hook (FACEINDEX_TEST_KILL_AT); without it, no faults.
    with (
        open_engine(home, **overrides) as engine,
        Governance.open(engine, faults=faults_from_env()) as gov,
    ):
        yield gov


def read_photos(paths: list[Path]) -> list[bytes]:
    out = []
    for path in paths:
        try:
            out.append(path.read_bytes())
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return out
