"""The model a home's gallery was embedded with, recorded in ``<home>/model.json``.

Embeddings of two models live in different spaces (often of different dimensions): one
home holds one model's. The record is written when a home is first opened and checked on
every open after; opening a home with another model is a :class:`ConfigError` naming both.
``faceindex reembed`` is the one way to move a home to another model.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from faceindex.errors import ConfigError
from faceindex.vision.pack import DLIB_PACK, METRICS, ModelIdentity, ModelPack

__all__ = ["RECORD_FILE", "check_model", "read_record", "recorded_source", "write_record"]

RECORD_FILE = "model.json"


def read_record(home: Path) -> ModelIdentity | None:
    path = home / RECORD_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        identity = ModelIdentity(
            str(raw["name"]), str(raw["version"]), int(raw["dim"]), raw["metric"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable model record ({exc})") from exc
    if identity.metric not in METRICS:
        raise ConfigError(f"{path}: unknown metric {identity.metric!r}")
    return identity


def recorded_source(home: Path) -> str | None:
    """How the home's model was named when recorded (a built-in name or a pack directory)."""
    path = home / RECORD_FILE
    if not path.is_file():
        return None
    try:
        source = json.loads(path.read_text()).get("source")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a readable model record ({exc})") from exc
    return source if isinstance(source, str) and source else None


def write_record(home: Path, pack: ModelPack) -> None:
    """Record ``pack`` as the home's model (atomically: a crash leaves the old or the new)."""
    ident = pack.identity
    body = {
        "name": ident.name,
        "version": ident.version,
        "dim": ident.dim,
        "metric": ident.metric,
        "source": pack.source,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = home / RECORD_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


def check_model(home: Path, pack: ModelPack, *, has_gallery: bool) -> None:
    """Refuse ``pack`` for a home whose gallery another model made; record it for a new home.

    A home from before model packs has no record; its faces can only be dlib's.
    """
    recorded = read_record(home)
    if recorded is None:
        recorded = DLIB_PACK.identity if has_gallery else pack.identity
        write_record(home, DLIB_PACK if has_gallery else pack)
    if recorded != pack.identity:
        raise ConfigError(
            f"the home {home} was built with model {recorded.describe()}, but the settings "
            f"ask for {pack.identity.describe()}: set model to the home's model, or move "
            f"the home with 'faceindex reembed --model {pack.source or pack.name}'"
        )
