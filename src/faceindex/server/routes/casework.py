"""1:1 verification, review decisions on a search's candidates, and the case view.

Every route calls the governance facade (``governance/casework.py`` says who may do what),
which checks the permission again and writes the audit entry before answering.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile

from faceindex.engine import Engine
from faceindex.governance.roles import Actor, Permission
from faceindex.search.case_result import case_dict, review_dict, verification_dict
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, read_upload, state
from faceindex.server.schemas import TEXT_PATTERN, ReviewOut
from faceindex.server.schemas_casework import CaseOut, FaceVerificationOut, ReviewIn

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["casework"])
P = Permission

SearchId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="from a search answer")]
CaseRef = Annotated[
    str, Path(min_length=1, max_length=200, pattern=TEXT_PATTERN, description="a case reference")
]
FaceNumber = Annotated[
    int | None,
    Form(ge=1, le=1000, description="which face of the photo (1-based, as /v1/probe/faces "
         "lists them); default: the largest"),
]  # fmt: skip


@router.post(
    "/verifications",
    response_model=FaceVerificationOut,
    responses=errors(400, 403, 413, 503),  # 503: the request timeout
    summary="1:1: is the face in photo A the same person as the face in photo B?",
)
async def verify(
    request: Request,
    image_a: Annotated[UploadFile, File(description="photo A")],
    image_b: Annotated[UploadFile, File(description="photo B")],
    case_reference: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT_PATTERN)],
    purpose: Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN)],
    face_a: FaceNumber = None,
    face_b: FaceNumber = None,
    match_bound: Annotated[
        float | None,
        Form(gt=0, lt=1, description="this comparison's match bound (default: the setting)"),
    ] = None,
    actor: Actor = Depends(allow(P.SEARCH)),
) -> FaceVerificationOut:
    """Decided with the model's calibration at N = 1 (one comparison); audited before the
    answer is returned. A photo without a face is a 422 naming the photo."""
    st = state(request)
    limit = st.settings.max_bytes
    photo_a, photo_b = await read_upload(image_a, limit), await read_upload(image_b, limit)

    def run(engine: Engine) -> FaceVerificationOut:
        v = st.acting(engine, actor).verify(
            photo_a,
            photo_b,
            case=case_reference,
            purpose=purpose,
            face_a=face_a,
            face_b=face_b,
            match_bound=match_bound,
        )
        body = verification_dict(v, case_reference=case_reference, purpose=purpose)
        return FaceVerificationOut.model_validate(body)

    return await st.runner.run(run)


@router.post(
    "/searches/{search_id}/reviews",
    response_model=ReviewOut,
    status_code=201,
    responses=errors(400, 403, 404, 503),
    summary="Record a review decision on one candidate of a search",
)
async def review(
    request: Request,
    search_id: SearchId,
    body: ReviewIn,
    actor: Actor = Depends(allow(P.SEARCH)),
) -> ReviewOut:
    """Confirmed, rejected or inconclusive, with a note. The search must be one of a case
    the caller works on (404 otherwise) and the face one of its candidates."""
    st = state(request)

    def run(engine: Engine) -> ReviewOut:
        r = st.acting(engine, actor).review(search_id, body.face_id, body.decision, note=body.note)
        return ReviewOut.model_validate(review_dict(r))

    return await st.runner.light(run)


@router.get(
    "/cases/{case_ref:path}",
    response_model=CaseOut,
    responses=errors(403, 404, 503),
    summary="A case: its searches, verifications, candidates and their decisions",
)
async def case(
    request: Request,
    case_ref: CaseRef,
    actor: Actor = Depends(allow(P.SEARCH, P.READ_AUDIT)),
) -> CaseOut:
    """Investigators see the cases they have searched in; roles that read the audit log
    see every case. Another case is 404, as another user's search is."""
    st = state(request)

    def run(engine: Engine) -> CaseOut:
        return CaseOut.model_validate(case_dict(st.acting(engine, actor).case(case_ref)))

    return await st.runner.light(run)
