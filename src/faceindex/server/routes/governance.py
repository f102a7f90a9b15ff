"""Deletion with receipts, opt-out, subject access, retention and the audit log.

Every route calls the governance facade (``faceindex.governance.service.Governance``),
which checks the permission again, writes the audit entry, and fails closed when it cannot.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from faceindex.engine import Engine
from faceindex.governance.auditing import AuditFilter
from faceindex.governance.base import Receipt
from faceindex.governance.roles import Actor, Permission
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, read_upload, state
from faceindex.server.schemas import (
    MAX_ID,
    NAME_PATTERN,
    TEXT_PATTERN,
    AuditEntryOut,
    AuditOut,
    EraseIds,
    GcOut,
    HoldingOut,
    OptOutOut,
    ReceiptCheckOut,
    ReceiptOut,
    SuppressionOut,
    VerificationOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["governance"])
P = Permission

Photos = Annotated[
    list[UploadFile], File(description="1-5 photos of the person", min_length=1, max_length=5)
]
Reason = Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN)]
ReceiptId = Annotated[str, Path(pattern=r"^rcp-[0-9a-f]{16}$")]
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?)?$"


def receipt_out(r: Receipt) -> ReceiptOut:
    return ReceiptOut(**r.as_dict())


async def _photos(request: Request, photos: list[UploadFile]) -> list[bytes]:
    limit = state(request).settings.max_bytes
    return [await read_upload(p, limit) for p in photos]


# -- erasure ------------------------------------------------------------------------------


@router.post(
    "/erasures/faces",
    response_model=ReceiptOut,
    status_code=201,
    responses=errors(400, 403),
    summary="Erase faces by id; returns the deletion receipt",
)
async def erase_faces(
    request: Request, body: EraseIds, actor: Actor = Depends(allow(P.DELETE))
) -> ReceiptOut:
    st = state(request)
    return receipt_out(
        await st.runner.run(lambda e: st.acting(e, actor).erase_faces(body.ids, reason=body.reason))
    )


@router.post(
    "/erasures/images",
    response_model=ReceiptOut,
    status_code=201,
    responses=errors(400, 403),
    summary="Erase images (and all their faces) by id",
)
async def erase_images(
    request: Request, body: EraseIds, actor: Actor = Depends(allow(P.DELETE))
) -> ReceiptOut:
    st = state(request)
    return receipt_out(
        await st.runner.run(
            lambda e: st.acting(e, actor).erase_images(body.ids, reason=body.reason)
        )
    )


@router.delete(
    "/sources/{name}",
    response_model=ReceiptOut,
    responses=errors(400, 403, 404),
    tags=["sources"],
    summary="Delete a source and every image only it holds",
)
async def erase_source(
    request: Request,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    reason: Annotated[str, Query(min_length=1, max_length=500, pattern=TEXT_PATTERN)],
    actor: Actor = Depends(allow(P.DELETE)),
) -> ReceiptOut:
    st = state(request)
    return receipt_out(
        await st.runner.run(lambda e: st.acting(e, actor).erase_source(name, reason=reason))
    )


@router.post(
    "/erasures/person",
    response_model=ReceiptOut,
    status_code=201,
    responses=errors(400, 403, 413),
    summary="Erase every face close to photos of a person",
)
async def erase_person(
    request: Request, images: Photos, reason: Reason, actor: Actor = Depends(allow(P.DELETE))
) -> ReceiptOut:
    st = state(request)
    probes = await _photos(request, images)
    return receipt_out(
        await st.runner.run(lambda e: st.acting(e, actor).erase_person(probes, reason=reason))
    )


@router.get(
    "/receipts",
    response_model=list[ReceiptOut],
    responses=errors(403),
    summary="Every deletion receipt",
)
async def receipts(
    request: Request, actor: Actor = Depends(allow(P.DELETE, P.READ_AUDIT))
) -> list[ReceiptOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).receipts())
    return [receipt_out(r) for r in rows]


@router.get(
    "/receipts/{receipt_id}/check",
    response_model=ReceiptCheckOut,
    responses=errors(403, 404),
    summary="Re-check that nothing a receipt deleted remains",
)
async def check_receipt(
    request: Request,
    receipt_id: ReceiptId,
    actor: Actor = Depends(allow(P.DELETE, P.READ_AUDIT)),
) -> ReceiptCheckOut:
    st = state(request)
    check = await st.runner.run(lambda e: st.acting(e, actor).verify_receipt(receipt_id))
    data = asdict(check)
    data["receipt"] = receipt_out(check.receipt)
    return ReceiptCheckOut(**data)


# -- opt-out, subject access, retention --------------------------------------------------


@router.post(
    "/opt-outs",
    response_model=OptOutOut,
    status_code=201,
    responses=errors(400, 403, 413),
    summary="Register an opt-out from photos of a person and erase what matches now",
)
async def opt_out(
    request: Request, images: Photos, reference: Reason, actor: Actor = Depends(allow(P.OPT_OUT))
) -> OptOutOut:
    st = state(request)
    probes = await _photos(request, images)
    done = await st.runner.run(lambda e: st.acting(e, actor).opt_out(probes, reference=reference))
    return OptOutOut(
        suppression=SuppressionOut(**asdict(done.suppression)), receipt=receipt_out(done.receipt)
    )


@router.get(
    "/opt-outs",
    response_model=list[SuppressionOut],
    responses=errors(403),
    summary="Registered opt-outs (never their face templates)",
)
async def opt_outs(
    request: Request, actor: Actor = Depends(allow(P.OPT_OUT))
) -> list[SuppressionOut]:
    st = state(request)
    rows = await st.runner.light(lambda e: st.acting(e, actor).suppressions())
    return [SuppressionOut(**asdict(s)) for s in rows]


@router.post(
    "/subject-access",
    response_model=list[HoldingOut],
    responses=errors(400, 403, 413),
    summary="Everything held that matches photos of a person",
)
async def subject_access(
    request: Request,
    images: Photos,
    reference: Reason,
    actor: Actor = Depends(allow(P.SUBJECT_ACCESS)),
) -> list[HoldingOut]:
    st = state(request)
    probes = await _photos(request, images)
    held = await st.runner.run(
        lambda e: st.acting(e, actor).subject_access(probes, reference=reference)
    )
    # The thumbnails of what is held, fetchable only by this caller and only for these faces.
    access_id = st.shown.record(f"sar:{actor.name}", {h.face_id for h in held})
    base = f"/v1/subject-access/{access_id}/faces"
    return [
        HoldingOut(
            **{**asdict(h), "box": list(h.box)}, thumbnail_url=f"{base}/{h.face_id}/thumbnail"
        )
        for h in held
    ]


@router.post(
    "/retention/gc",
    response_model=GcOut,
    responses=errors(403),
    summary="Erase what is past its retention and sweep against opt-outs",
)
async def retention_gc(request: Request, actor: Actor = Depends(allow(P.RETENTION))) -> GcOut:
    st = state(request)
    report = await st.runner.run(lambda e: st.acting(e, actor).gc())
    return GcOut(**asdict(report))


# -- audit --------------------------------------------------------------------------------


@router.get(
    "/audit",
    response_model=AuditOut,
    responses=errors(403),
    summary="The newest audit entries and the verification of the whole chain",
)
async def audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="entries before")] = None,
    actor_name: Annotated[
        str | None, Query(alias="actor", max_length=200, pattern=TEXT_PATTERN)
    ] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=TEXT_PATTERN)] = None,
    case: Annotated[
        str | None, Query(max_length=200, pattern=TEXT_PATTERN, description="contains")
    ] = None,
    since: Annotated[str | None, Query(pattern=_ISO, description="ISO date or time")] = None,
    until: Annotated[str | None, Query(pattern=_ISO, description="inclusive")] = None,
    actor: Actor = Depends(allow(P.READ_AUDIT)),
) -> AuditOut:
    st = state(request)
    wanted = AuditFilter(actor_name or "", action or "", case or "", since or "", until or "")

    def read(engine: Engine) -> AuditOut:
        gov = st.acting(engine, actor)
        report = gov.verify_audit()  # audited, and checks the permission once more
        total = gov.audit.count()
        page = gov.audit_page(wanted, limit=limit, before=before)
        return AuditOut(
            verification=VerificationOut(**asdict(report)),
            total=total,
            entries=[AuditEntryOut(**e.as_dict()) for e in page.entries],
            next_before=page.next_before,
        )

    return await st.runner.light(read)


@router.get(
    "/audit/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-ndjson": {}, "text/csv": {}},
            "description": "the whole log (JSONL verifies offline)",
        },
        **errors(403),
    },
    summary="Export the whole audit log",
)
async def audit_export(
    request: Request,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
    actor: Actor = Depends(allow(P.READ_AUDIT)),
) -> Response:
    st = state(request)

    def export(engine: Engine) -> str:
        out = io.StringIO()
        st.acting(engine, actor).export_audit(out, format)
        return out.getvalue()

    text = await st.runner.light(export)
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    disposition = f'attachment; filename="faceindex-audit.{format}"'
    return Response(text, media_type=media, headers={"Content-Disposition": disposition})
