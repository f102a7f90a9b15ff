"""The privacy officer's and auditor's routes the CLI had and HTTP lacked: tombstones and
their audited lift, audit anchors (the signed head returned, to keep elsewhere) and verify
against anchors, registered CSV exports made, listed and fetched, and the thumbnails a
subject access answer names.

Every route calls the governance facade, which checks the permission again and audits.
An export made over HTTP is written into the home's ``exports`` folder (a caller never
names a server path) and only those are served back.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from faceindex.governance.audit import AuditHead
from faceindex.governance.base import ExportRecord
from faceindex.governance.roles import Actor, Permission
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, read_upload, state
from faceindex.server.schemas import (
    MAX_ID,
    NAME_PATTERN,
    TEXT_PATTERN,
    AnchorOut,
    AnchorsIn,
    ExportIn,
    ExportOut,
    LiftIn,
    LiftOut,
    TombstoneOut,
    VerificationOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["governance"])
P = Permission

_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
ReceiptQuery = Annotated[
    str | None, Query(pattern=r"^rcp-[0-9a-f]{16}$", description="only this receipt's")
]


def export_out(e: ExportRecord) -> ExportOut:
    return ExportOut(**e.as_dict())


# -- tombstones ---------------------------------------------------------------------------


@router.get(
    "/tombstones",
    response_model=list[TombstoneOut],
    responses=errors(403),
    summary="The erased images' content (sha256) every ingest refuses",
)
async def tombstones(
    request: Request, receipt: ReceiptQuery = None, actor: Actor = Depends(allow(P.DELETE))
) -> list[TombstoneOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).tombstones(receipt))
    return [TombstoneOut(**asdict(t)) for t in rows]


@router.post(
    "/tombstone-lifts",
    response_model=LiftOut,
    status_code=201,
    responses=errors(403, 404),
    summary="Lift tombstones (audited, with a reason): those bytes may be ingested again",
)
async def lift(request: Request, body: LiftIn, actor: Actor = Depends(allow(P.DELETE))) -> LiftOut:
    st = state(request)
    lifted = await st.runner.light(
        lambda e: st.acting(e, actor).lift_tombstone(body.target, reason=body.reason)
    )
    return LiftOut(lifted=lifted)


# -- audit anchors ------------------------------------------------------------------------


def _anchor_out(head: AuditHead) -> AnchorOut:
    return AnchorOut(**asdict(head), line=head.to_line())


@router.post(
    "/audit/anchors",
    response_model=AnchorOut,
    status_code=201,
    responses=errors(403, 503),
    summary="The audit log's signed head, after checking the chain: keep it elsewhere",
)
async def anchor(request: Request, actor: Actor = Depends(allow(P.READ_AUDIT))) -> AnchorOut:
    st = state(request)
    head = await st.runner.light(lambda e: st.acting(e, actor).anchor_head())
    return _anchor_out(head)


@router.post(
    "/audit/verifications",
    response_model=VerificationOut,
    responses=errors(403),
    summary="Verify the whole chain against heads anchored earlier",
)
async def verify_against(
    request: Request, body: AnchorsIn, actor: Actor = Depends(allow(P.READ_AUDIT))
) -> VerificationOut:
    st = state(request)
    heads = [AuditHead.parse(line) for line in body.anchors]  # InputError: 400
    report = await st.runner.light(lambda e: st.acting(e, actor).verify_audit(heads))
    return VerificationOut(**asdict(report))


# -- exports ------------------------------------------------------------------------------


@router.post(
    "/exports",
    response_model=ExportOut,
    status_code=201,
    responses=errors(403, 404),
    summary="Export a source's faces and locations as CSV (registered; no embeddings)",
)
async def make_export(
    request: Request, body: ExportIn, actor: Actor = Depends(allow(P.EXPORT))
) -> ExportOut:
    st = state(request)
    record = await st.runner.run(
        lambda e: st.acting(e, actor).export_source_served(
            body.source, case=body.case_reference, purpose=body.purpose
        )
    )
    return export_out(record)


@router.post(
    "/exports/searches",
    response_model=ExportOut,
    status_code=201,
    responses=errors(403, 413),
    summary="Search by photo (audited) and export the results as CSV (registered)",
)
async def make_search_export(
    request: Request,
    image: Annotated[UploadFile, File(description="the probe photo")],
    case_reference: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT_PATTERN)],
    purpose: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT_PATTERN)],
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    actor: Actor = Depends(allow(P.EXPORT)),
) -> ExportOut:
    st = state(request)
    data = await read_upload(image, st.settings.max_bytes)
    record = await st.runner.run(
        lambda e: st.acting(e, actor).export_search_served(
            data, case=case_reference, purpose=purpose, top_k=top_k
        )
    )
    return export_out(record)


@router.get(
    "/exports",
    response_model=list[ExportOut],
    responses=errors(403),
    summary="Every registered export (CLI and HTTP), oldest first",
)
async def list_exports(
    request: Request,
    source: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    actor: Actor = Depends(allow(P.EXPORT, P.READ_AUDIT)),
) -> list[ExportOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).exports(source))
    return [export_out(r) for r in rows]


@router.get(
    "/exports/{export_id}/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the CSV"}, **errors(403, 404)},
    summary="The CSV of an export made over HTTP (audited)",
)
async def export_csv(
    request: Request,
    export_id: Annotated[str, Path(pattern=r"^exp-[0-9a-f]{16}$")],
    actor: Actor = Depends(allow(P.EXPORT)),
) -> Response:
    st = state(request)
    _, data = await st.runner.light(lambda e: st.acting(e, actor).export_file(export_id))
    headers = {**_PRIVATE, "Content-Disposition": f'attachment; filename="{export_id}.csv"'}
    return Response(data, media_type="text/csv", headers=headers)


# -- subject access thumbnails ------------------------------------------------------------


@router.get(
    "/subject-access/{access_id}/faces/{face_id}/thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "JPEG thumbnail"},
        **errors(403, 404),
    },
    summary="The thumbnail of a face listed in one of the caller's subject access answers",
)
async def subject_thumbnail(
    request: Request,
    access_id: Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")],
    face_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    actor: Actor = Depends(allow(P.SUBJECT_ACCESS)),
) -> Response:
    st = state(request)
    st.shown.check(f"sar:{actor.name}", access_id, face_id)

    jpeg = await st.runner.light(lambda e: st.acting(e, actor).subject_thumbnail(face_id))
    return Response(jpeg, media_type="image/jpeg", headers=_PRIVATE)
