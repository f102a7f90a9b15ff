"""Persons: list, show, build, name, merge, split, remove-face, and their faces' thumbnails.

Every route calls the Governance facade's persons collaborator (governance/persons.py),
which checks the permission again and writes the audit entry. Seeing persons needs
``search``; changing them ``manage-persons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from faceindex.governance.roles import Actor, Permission
from faceindex.persons.view import PersonView, person_dict
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, state
from faceindex.server.schemas import (
    MAX_ID,
    PersonBuildIn,
    PersonBuildOut,
    PersonLabelIn,
    PersonMergeIn,
    PersonOut,
    PersonsOut,
    PersonSplitIn,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/persons", tags=["persons"])
P = Permission
PersonId = Annotated[int, Path(ge=1, le=MAX_ID)]
FaceId = Annotated[int, Path(ge=1, le=MAX_ID)]
_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "the thumbnail bytes"}
}
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _out(view: PersonView) -> PersonOut:
    pid = view.person.id

    def link(face_id: int) -> str:
        return f"/v1/persons/{pid}/faces/{face_id}/thumbnail"

    return PersonOut.model_validate(person_dict(view, link))


def _many(views: Sequence[PersonView | None]) -> PersonsOut:
    return PersonsOut(persons=[_out(v) for v in views if v is not None])


@router.get(
    "", response_model=PersonsOut, responses=errors(403), summary="Every person with its faces"
)
async def list_persons(request: Request, actor: Actor = Depends(allow(P.SEARCH))) -> PersonsOut:
    st = state(request)
    return _many(await st.runner.light(lambda e: st.acting(e, actor).persons.list()))


@router.post(
    "/build",
    response_model=PersonBuildOut,
    responses=errors(403, 503),
    summary="Cluster faces into persons (new faces only, or a rebuild)",
)
async def build_persons(
    request: Request,
    body: PersonBuildIn | None = None,
    actor: Actor = Depends(allow(P.MANAGE_PERSONS)),
) -> PersonBuildOut:
    st = state(request)
    rebuild = body.rebuild if body else False
    report = await st.runner.run(lambda e: st.acting(e, actor).persons.build(rebuild=rebuild))
    return PersonBuildOut(**asdict(report))


@router.get(
    "/{person_id}",
    response_model=PersonOut,
    responses=errors(403, 404),
    summary="One person: its faces, their boxes and locations",
)
async def show_person(
    request: Request, person_id: PersonId, actor: Actor = Depends(allow(P.SEARCH))
) -> PersonOut:
    st = state(request)
    return _out(await st.runner.light(lambda e: st.acting(e, actor).persons.show(person_id)))


@router.put(
    "/{person_id}/label",
    response_model=PersonOut,
    responses=errors(403, 404),
    summary="Name a person (a name or case label; '' clears it)",
)
async def label_person(
    request: Request,
    person_id: PersonId,
    body: PersonLabelIn,
    actor: Actor = Depends(allow(P.MANAGE_PERSONS)),
) -> PersonOut:
    st = state(request)
    view = await st.runner.light(lambda e: st.acting(e, actor).persons.name(person_id, body.label))
    return _out(view)


@router.post(
    "/{person_id}/merges",
    response_model=PersonOut,
    responses=errors(403, 404),
    summary="Merge another person into this one",
)
async def merge_persons(
    request: Request,
    person_id: PersonId,
    body: PersonMergeIn,
    actor: Actor = Depends(allow(P.MANAGE_PERSONS)),
) -> PersonOut:
    st = state(request)
    view = await st.runner.light(lambda e: st.acting(e, actor).persons.merge(person_id, body.other))
    return _out(view)


@router.post(
    "/{person_id}/splits",
    response_model=PersonsOut,
    responses=errors(403, 404),
    summary="Move some of a person's faces to a new person (answers both)",
)
async def split_person(
    request: Request,
    person_id: PersonId,
    body: PersonSplitIn,
    actor: Actor = Depends(allow(P.MANAGE_PERSONS)),
) -> PersonsOut:
    st = state(request)
    old, new = await st.runner.light(
        lambda e: st.acting(e, actor).persons.split(person_id, body.face_ids)
    )
    return _many([old, new])


@router.delete(
    "/{person_id}/faces/{face_id}",
    response_model=PersonsOut,
    responses=errors(403, 404),
    summary="Take a face out of a person (it becomes a person of its own)",
)
async def remove_person_face(
    request: Request,
    person_id: PersonId,
    face_id: FaceId,
    actor: Actor = Depends(allow(P.MANAGE_PERSONS)),
) -> PersonsOut:
    st = state(request)
    rest, own = await st.runner.light(
        lambda e: st.acting(e, actor).persons.remove_face(person_id, face_id)
    )
    return _many([rest, own])


@router.get(
    "/{person_id}/faces/{face_id}/thumbnail",
    response_class=Response,
    responses={**_IMAGE, **errors(403, 404)},
    summary="The thumbnail of one of a person's faces",
)
async def person_face_thumbnail(
    request: Request, person_id: PersonId, face_id: FaceId, actor: Actor = Depends(allow(P.SEARCH))
) -> Response:
    st = state(request)
    jpeg = await st.runner.light(
        lambda e: st.acting(e, actor).persons.thumbnail(person_id, face_id)
    )
    return Response(jpeg, media_type="image/jpeg", headers=_PRIVATE)
