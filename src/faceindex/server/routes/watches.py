"""Watchlists over HTTP: watches from uploaded photos, their alerts with thumbnails.

Every route calls the Governance facade (``governance/watches.py``), which checks the
permission again, keeps owners to their own watches (``read-audit`` sees all), and audits.
No descriptor leaves: a watch says how many it holds, an alert where its face was found.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import Field

from faceindex.catalog.watch_rows import WatchRecord
from faceindex.governance.roles import Actor, Permission
from faceindex.governance.watches import Alert
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, read_upload, state
from faceindex.server.schemas import (
    MAX_ID,
    NAME_PATTERN,
    TEXT_PATTERN,
    AlertOut,
    ProvenanceOut,
    WatchOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["watchlists"])
P = Permission

WatchId = Annotated[int, Path(ge=1, le=MAX_ID)]
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def watch_out(w: WatchRecord) -> WatchOut:
    data = asdict(w)
    data.pop("from_generation")
    data["sources"] = list(w.sources)
    return WatchOut(**data)


def alert_out(a: Alert) -> AlertOut:
    data = asdict(a)
    data["locations"] = [ProvenanceOut(**asdict(p)) for p in a.locations]
    data["thumbnail"] = f"/v1/alerts/{a.id}/thumbnail" if a.held else None
    return AlertOut(**data)


@router.post(
    "/watches",
    response_model=WatchOut,
    status_code=201,
    responses=errors(400, 403, 404, 413),  # 404: no such person
    summary="Watch for a person: alert when a new photo of them is ingested",
)
async def add_watch(
    request: Request,
    case_reference: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT_PATTERN)],
    purpose: Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN)],
    images: Annotated[
        list[UploadFile] | None,
        File(
            description="1-5 photos of the person (the largest face of each); or person_id",
            max_length=5,
        ),
    ] = None,  # fmt: skip
    person_id: Annotated[
        int | None, Form(ge=1, le=MAX_ID, description="watch for a catalogued person instead")
    ] = None,
    expires_days: Annotated[
        int | None, Form(ge=1, le=3650, description="default: the watch_default_days setting")
    ] = None,
    sources: Annotated[
        list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None,
        Form(description="watch only these sources (default: all the purpose allows)"),
    ] = None,
    actor: Actor = Depends(allow(P.WATCH)),
) -> WatchOut:
    """The photos are not kept: their face descriptors are, until the watch ends."""
    st = state(request)
    probes = [await read_upload(p, st.settings.max_bytes) for p in images or []]
    made = await st.runner.run(
        lambda e: st.acting(e, actor).add_watch(
            probes,
            person=person_id,
            case=case_reference,
            purpose=purpose,
            expires_days=expires_days,
            sources=sources or None,
        )
    )
    return watch_out(made)


@router.get(
    "/watches",
    response_model=list[WatchOut],
    responses=errors(403),
    summary="The caller's watches (every watch for read-audit)",
)
async def watches(
    request: Request, actor: Actor = Depends(allow(P.WATCH, P.READ_AUDIT))
) -> list[WatchOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).watches())
    return [watch_out(w) for w in rows]


@router.delete(
    "/watches/{watch_id}",
    response_model=WatchOut,
    responses=errors(403, 404),
    summary="End a watch now (its descriptors are deleted, its alerts kept)",
)
async def remove_watch(
    request: Request, watch_id: WatchId, actor: Actor = Depends(allow(P.WATCH))
) -> WatchOut:
    st = state(request)
    return watch_out(await st.runner.light(lambda e: st.acting(e, actor).remove_watch(watch_id)))


@router.get(
    "/watches/{watch_id}/alerts",
    response_model=list[AlertOut],
    responses=errors(403, 404),
    summary="One watch's alerts",
)
async def watch_alerts(
    request: Request, watch_id: WatchId, actor: Actor = Depends(allow(P.WATCH, P.READ_AUDIT))
) -> list[AlertOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).watch_alerts(watch_id))
    return [alert_out(a) for a in rows]


@router.get(
    "/alerts",
    response_model=list[AlertOut],
    responses=errors(403),
    summary="Alerts of every watch the caller may see",
)
async def alerts(
    request: Request, actor: Actor = Depends(allow(P.WATCH, P.READ_AUDIT))
) -> list[AlertOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).watch_alerts())
    return [alert_out(a) for a in rows]


@router.get(
    "/alerts/{alert_id}/thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the face thumbnail"},
        **errors(403, 404),
    },
    summary="The thumbnail of an alert's face",
)
async def alert_thumbnail(
    request: Request, alert_id: AlertId, actor: Actor = Depends(allow(P.WATCH, P.READ_AUDIT))
) -> Response:
    st = state(request)
    jpeg = await st.runner.light(lambda e: st.acting(e, actor).alert_thumbnail(alert_id))
    return Response(jpeg, media_type="image/jpeg", headers=_PRIVATE)
