"""Switching a home's catalog, index and model record for re-embedded ones, crash-safely.

``faceindex.reembed`` builds the new files in ``<home>/reembed/<model>/`` and marks its
``state.json`` ``switching`` when they are complete; :func:`switch` then moves the old files
to ``reembed/retired`` and the new ones in. Every step can run again: a crash mid-switch is
completed by :func:`complete_switch`, which :meth:`Engine.open` runs before opening anything,
so a half-switched home (a new catalog beside an old index) is never opened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

from faceindex.errors import ConfigError

__all__ = ["MOVED", "complete_switch", "read_state", "switch", "write_state"]

log = logging.getLogger(__name__)

MOVED = ("catalog.db", "catalog.db-wal", "catalog.db-shm", "index", "model.json")


def complete_switch(home: Path) -> bool:
    """Finish a switch a crash interrupted; True if there was one."""
    root = home / "reembed"
    if not root.is_dir():
        return False
    done = False
    for staging in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "retired"):
        if read_state(staging).get("phase") == "switching":
            log.warning("completing the interrupted switch to %s", staging.name)
            switch(home, staging)
            done = True
    return done


def switch(home: Path, staging: Path) -> None:
    """Old files out to ``reembed/retired``, new ones in; safe to run again after a crash."""
    retired = home / "reembed" / "retired"
    retired.mkdir(parents=True, exist_ok=True)
    catalog_pending = (staging / "catalog.db").exists()
    for name in MOVED:  # all out first: an old WAL must never sit beside the new catalog
        if (staging / name).exists() or (catalog_pending and name.startswith("catalog.db-")):
            _move(home / name, retired / name)
    for name in MOVED:
        _move(staging / name, home / name)
    shutil.rmtree(retired, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)  # state.json last: the switch is complete
    with contextlib.suppress(OSError):  # other models' staging may still be there
        (home / "reembed").rmdir()


def _move(src: Path, dst: Path) -> None:
    if not src.exists():
        return
    if dst.is_dir():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    os.replace(src, dst)


def read_state(staging: Path) -> dict[str, object]:
    path = staging / "state.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable reembed state ({exc})") from exc
    return data if isinstance(data, dict) else {}


def write_state(staging: Path, state: dict[str, object]) -> None:
    path = staging / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)
