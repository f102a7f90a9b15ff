"""Health, the caller's identity, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from faceindex import __version__
from faceindex.governance.roles import ROLE_PERMISSIONS, Actor, Permission
from faceindex.server.auth import authenticated
from faceindex.server.routes.common import errors, state
from faceindex.server.schemas import Health, Me

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/v1/health", response_model=Health, summary="Liveness and gallery size (public)")
async def health(request: Request) -> Health:
    faces = await state(request).runner.light(lambda e: e.index.count())
    return Health(status="ok", version=__version__, faces=faces)


@router.get("/v1/me", response_model=Me, responses=errors(), summary="Who the token belongs to")
async def me(actor: Actor = Depends(authenticated)) -> Me:
    perms = sorted(ROLE_PERMISSIONS[actor.role], key=lambda p: list(Permission).index(p))
    return Me(name=actor.name, role=actor.role, permissions=perms)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics (public: counts and latencies only)",
)
async def metrics(request: Request) -> Response:
    st = state(request)
    st.metrics.in_flight.set(st.runner.in_flight)
    st.metrics.gallery.set(await st.runner.light(lambda e: e.index.count()))
    return Response(st.metrics.render(), media_type=CONTENT_TYPE_LATEST)
