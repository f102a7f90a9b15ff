"""The exception tree mapped once to HTTP problem+json (RFC 9457).

Each answer carries ``type`` (a stable URN), ``title``, ``status`` and ``detail`` (the
reason). No traceback ever reaches a client: an unexpected exception is logged here and
answered with a bare 500 problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from faceindex import errors as e
from faceindex.server.concurrency import Busy, TimedOut

__all__ = [
    "PROBLEM_JSON",
    "RateLimited",
    "Unauthorized",
    "allowed_methods",
    "install_error_handlers",
    "problem",
    "problem_for",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Unauthorized(Exception):
    """No bearer token, or one that is unknown or revoked."""


class RateLimited(Exception):
    def __init__(self, retry_after: int, what: str = "rate limit exceeded for this token") -> None:
        super().__init__(f"{what}; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Kind:
    status: int
    slug: str
    title: str


# Most specific first: the first isinstance match wins.
_MAP: list[tuple[type[BaseException], _Kind]] = [
    (e.AuditError, _Kind(503, "audit-unavailable", "Audit log unavailable; refused")),
    (e.PermissionDenied, _Kind(403, "forbidden", "Permission denied")),
    (e.SourceRefused, _Kind(403, "source-refused", "Source refused")),
    (e.PolicyError, _Kind(403, "policy", "Refused by policy")),
    (e.NotFoundError, _Kind(404, "not-found", "Not found")),
    (e.ImageTooLarge, _Kind(413, "too-large", "Image too large")),
    (e.NoFaceError, _Kind(422, "no-face", "No face found")),
    (e.DecodeError, _Kind(422, "bad-image", "Image cannot be decoded")),
    (e.ImageError, _Kind(422, "bad-image", "Image cannot be used")),
    (e.InputError, _Kind(400, "bad-request", "Bad request")),
    (e.StorageError, _Kind(503, "storage", "Storage unavailable")),
    (e.ModelError, _Kind(500, "model", "Face model unavailable")),
    (e.MissingDependency, _Kind(500, "dependency", "Server is missing a dependency")),
    (e.ConfigError, _Kind(500, "config", "Server misconfigured")),
    (Unauthorized, _Kind(401, "unauthorized", "Authentication required")),
    (RateLimited, _Kind(429, "rate-limited", "Too many requests")),
    (Busy, _Kind(429, "busy", "Server busy")),
    (TimedOut, _Kind(503, "timeout", "Request timed out")),
]

_BY_STATUS = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"type": f"urn:faceindex:problem:{slug}", "title": title, "status": status}
    body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: BaseException) -> JSONResponse:
    for cls, kind in _MAP:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            if isinstance(exc, RateLimited | Busy):
                headers["Retry-After"] = str(exc.retry_after)
            if isinstance(exc, Unauthorized):
                headers["WWW-Authenticate"] = "Bearer"
            if kind.status >= 500:
                log.warning("%s answered %d: %s", type(exc).__name__, kind.status, exc)
            return problem(kind.status, kind.slug, kind.title, str(exc), headers or None)
    log.error("unexpected error", exc_info=exc)
    return problem(500, "internal", "Internal error", "an unexpected error was logged")


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path. Starlette's 405 names only the first
    route that matched the path, but GET and POST /v1/sources are two routes. Each method
    is tried against the routes (``matches`` is their public interface, and it sees into
    included routers); a mount (static files) answers only GET and HEAD."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return allowed or ["GET", "HEAD"]


def install_error_handlers(app: FastAPI) -> None:
    async def on_known(request: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # registered for this class only
        return problem(422, "invalid", "Invalid request", _validation_detail(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # registered for this class only
        title = _BY_STATUS.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, "http", title, str(exc.detail), headers or None)

    for cls in (e.FaceIndexError, Unauthorized, RateLimited, Busy, TimedOut):
        app.add_exception_handler(cls, on_known)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_known)
