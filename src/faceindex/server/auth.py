"""Who is calling: bearer token -> account -> rate limit -> permission check.

Failed sign-ins are rate limited by client address with the same bucket sizes as a token's
requests, checked before the token is looked at: a client guessing tokens gets 429 (with
``Retry-After``) once its failures use up the bucket, whatever it sends next.

Each route names the permission it needs with ``Depends(allow(Permission.X))``; the check
is the governance table's :func:`faceindex.governance.roles.require`, so the table in
``governance/roles.py`` is the only place that decides who may do what.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from faceindex.governance.audit import AuditEvent
from faceindex.governance.roles import Actor, Permission, require
from faceindex.server.errors import RateLimited, Unauthorized

__all__ = ["allow", "authenticated", "bearer"]

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="a token from 'faceindex users add'")


def authenticated(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Actor:
    """Any signed-in account (rate limited)."""
    limiter = request.app.state.limiter
    address = "address:" + (request.client.host if request.client else "unknown")
    wait = limiter.waiting(address)
    if wait:
        raise RateLimited(wait, "too many failed sign-ins from this address")
    if credentials is None or credentials.scheme.lower() != "bearer":
        limiter.take(address)
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    account = request.app.state.accounts.authenticate(credentials.credentials)
    if account is None:
        limiter.take(address)
        raise Unauthorized("unknown or revoked token")
    wait = limiter.take("account:" + account.name)
    if wait:
        raise RateLimited(wait)
    return account.actor


def allow(*permissions: Permission) -> Callable[..., Actor]:
    """A dependency that admits only actors whose role grants one of ``permissions``.

    A refusal is written to the audit log (action ``denied``) before the 403 is answered;
    the refusal stands even if the log cannot be written."""

    def dependency(request: Request, actor: Actor = Depends(authenticated)) -> Actor:
        if any(actor.can(p) for p in permissions):
            return actor
        try:
            request.app.state.faceindex.governance.audit.append(
                AuditEvent(
                    "denied",
                    actor.name,
                    actor.role.value,
                    outcome="denied",
                    details={"route": f"{request.method} {request.url.path}"},
                )
            )
        except Exception:
            log.exception("could not audit a refused %s %s", request.method, request.url.path)
        require(actor, permissions[0])
        return actor  # pragma: no cover - require() raised

    dependency.__name__ = "allow_" + "_or_".join(p.name.lower() for p in permissions)
    return dependency
