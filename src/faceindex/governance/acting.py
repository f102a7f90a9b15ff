"""Who is acting and where it is written down: the permission check and the audit entry that
every Governance collaborator shares (one per actor; the log is shared)."""

from __future__ import annotations

import logging
from typing import Any

from faceindex.governance.audit import AuditEvent, AuditLog
from faceindex.governance.roles import Actor, Permission, require

__all__ = ["Acting"]

log = logging.getLogger(__name__)


class Acting:
    """An actor bound to the audit log: :meth:`require` refuses (audited), :meth:`record`
    appends one entry as that actor."""

    def __init__(self, audit: AuditLog, actor: Actor) -> None:
        self.audit = audit
        self.actor = actor

    def event(self, action: str, **fields: Any) -> AuditEvent:
        return AuditEvent(action, self.actor.name, self.actor.role.value, **fields)

    def record(self, action: str, **fields: Any) -> int:
        return self.audit.append(self.event(action, **fields)).seq

    def require(self, *permissions: Permission, action: str, **fields: Any) -> None:
        """Pass if the actor holds any of ``permissions``; else audit the refusal and raise."""
        if any(self.actor.can(p) for p in permissions):
            return
        try:
            self.record("denied", outcome="denied", details={"action": action}, **fields)
        except Exception:  # the refusal stands whether or not it could be logged
            log.exception("could not audit a refused %s", action)
        require(self.actor, permissions[0])
