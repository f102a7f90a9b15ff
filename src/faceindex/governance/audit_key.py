"""The audit chain's HMAC key: where it comes from, and opening the home's log with it.

In order: ``audit_key`` (``FACEINDEX_AUDIT_KEY``: the key itself, e.g. from a secret
store), ``audit_key_file`` (a file the service can read, ideally one the operator of the
engine home cannot write: another owner, a secrets mount), else ``<home>/audit.key``,
created on first use (32 random bytes, hex, mode 0600) with a loud warning: a key beside
the log stops a forger who has only ``audit.db`` and ``audit.head``, not one who can read
the whole home. A key is 64 hex digits (32 bytes) or any text of at least 16 bytes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from faceindex.config import Settings
from faceindex.errors import ConfigError
from faceindex.governance.audit import AuditLog
from faceindex.governance.database import open_database

__all__ = ["KeySource", "audit_key", "open_audit", "parse_key"]

log = logging.getLogger(__name__)
HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class KeySource:
    """Where a key came from, as shown to users (never the key itself)."""

    where: str
    inside_home: bool = False


def parse_key(text: str, origin: str) -> bytes:
    text = text.strip()
    if HEX_KEY.match(text):
        return bytes.fromhex(text)
    raw = text.encode()
    if len(raw) < 16:
        raise ConfigError(f"the audit key from {origin} is too short (at least 16 bytes)")
    return raw


def _read(path: Path) -> bytes:
    try:
        return parse_key(path.read_text(), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key file {path}: {exc.strerror or exc}") from exc


def audit_key(settings: Settings, *, create: bool = True) -> tuple[bytes | None, KeySource]:
    """The configured key and where it is from; the default file is created if ``create``
    (else ``None`` when it does not exist yet)."""
    if settings.audit_key is not None:
        origin = KeySource("FACEINDEX_AUDIT_KEY (audit_key)")
        return parse_key(settings.audit_key.get_secret_value(), origin.where), origin
    if settings.audit_key_file is not None:
        path = Path(settings.audit_key_file).expanduser()
        inside = path.resolve().is_relative_to(settings.home.resolve())
        return _read(path), KeySource(str(path), inside)
    path = settings.home / "audit.key"
    origin = KeySource(str(path), inside_home=True)
    if path.is_file():
        return _read(path), origin
    if not create:
        return None, origin
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.warning(
        "AUDIT KEY CREATED at %s, inside the engine home: anyone who can read the home can "
        "re-sign a forged audit log. Move it where the home's operator cannot write or read "
        "it and set audit_key_file (or FACEINDEX_AUDIT_KEY); see docs/GOVERNANCE.md",
        path,
    )
    return _read(path), origin


def open_audit(settings: Settings) -> AuditLog:
    """The engine home's audit log (``audit.db``, or PostgreSQL by ``governance_url``), keyed."""
    key, origin = audit_key(settings)
    db = open_database(settings.governance_url, settings.home, "audit", secure_delete=False)
    log_ = AuditLog(db, key=key, key_origin=origin.where)
    log_.key_inside_home = origin.inside_home
    return log_
