"""Request limits: the body size (before a multipart parser spools anything to disk), and
no query parameters but the documented ones (a misspelt ``limt=`` is an error, not ignored)."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceindex.server.errors import problem

__all__ = ["BodyLimit", "known_query_only"]

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the text fields beside the photo


class BodyLimit:
    """Answer 413 when Content-Length says too much; stop reading when a stream says so.

    A chunked upload has no Content-Length: once its bytes pass the limit the app is told
    the client went away (it stops parsing), whatever it answers to that is dropped, and
    the client gets the same 413 problem a declared length would have got."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + FORM_OVERHEAD

    def _too_large(self, how: str) -> Response:
        return problem(
            413,
            "too-large",
            "Request too large",
            f"request bodies are limited to {self.max_bytes} bytes{how}",
        )

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
                if length < 0:
                    bad = problem(400, "bad-request", "Bad request", "invalid Content-Length")
                    await bad(scope, receive, send)
                    return
                if length > self.max_bytes:
                    await self._too_large(f"; Content-Length says {length}")(scope, receive, send)
                    return
        seen = 0
        over = False
        answered = False

        async def limited() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if over and not answered:
                return  # the app's answer to a body it never got whole: ours replaces it
            answered = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not over or answered:
                raise
        if over and not answered:
            await self._too_large("; this one was sent in chunks and passed it")(
                scope, receive, send
            )


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
