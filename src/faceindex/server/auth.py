"""Who is calling: bearer token -> account -> rate limit -> permission check.

Each route names the permission it needs with ``Depends(allow(Permission.X))``; the check
is the governance table's :func:`faceindex.governance.roles.require`, so the table in
``governance/roles.py`` is the only place that decides who may do what.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from faceindex.governance.roles import Actor, Permission, require
from faceindex.server.errors import RateLimited, Unauthorized

__all__ = ["allow", "authenticated", "bearer"]

bearer = HTTPBearer(auto_error=False, description="a token from 'faceindex users add'")


def authenticated(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Actor:
    """Any signed-in account (rate limited)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    account = request.app.state.accounts.authenticate(credentials.credentials)
    if account is None:
        raise Unauthorized("unknown or revoked token")
    wait = request.app.state.limiter.take(account.name)
    if wait:
        raise RateLimited(wait)
    return account.actor


def allow(permission: Permission) -> Callable[..., Actor]:
    """A dependency that admits only actors whose role grants ``permission``."""

    def dependency(actor: Actor = Depends(authenticated)) -> Actor:
        require(actor, permission)
        return actor

    dependency.__name__ = f"allow_{permission.name.lower()}"
    return dependency
