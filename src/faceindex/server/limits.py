"""Request limits: the body size (before a multipart parser spools anything to disk), and
no query parameters but the documented ones (a misspelt ``limt=`` is an error, not ignored)."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceindex.server.errors import problem

__all__ = ["BodyLimit", "known_query_only"]

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the text fields beside the photo


class BodyLimit:
    """Answer 413 when Content-Length says too much; stop reading when a stream says so."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > self.max_bytes:
                    response = problem(
                        413 if length > 0 else 400,
                        "too-large" if length > 0 else "bad-request",
                        "Request too large" if length > 0 else "Bad request",
                        f"request bodies are limited to {self.max_bytes} bytes"
                        if length > 0
                        else "invalid Content-Length",
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body parsing as they are.
                    raise HTTPException(
                        413, f"request bodies are limited to {self.max_bytes} bytes"
                    )
            return message

        await self.app(scope, limited, send)


def known_query_only(request: Request) -> None:
    """A router dependency: 422 for any query parameter the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)[:200]}")


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
