"""Search by photo, and the images a search result links to."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import Field

from faceindex.engine import Engine, build_source
from faceindex.errors import FaceIndexError, InputError, NotFoundError
from faceindex.governance.roles import Actor, Permission
from faceindex.search.result import search_dict
from faceindex.server.auth import allow
from faceindex.server.routes.common import errors, read_upload, state
from faceindex.server.schemas import (
    MAX_ID,
    NAME_PATTERN,
    TEXT_PATTERN,
    ProbeBoxOut,
    ProbeOut,
    SearchOut,
)
from faceindex.sources.base import SourceItem
from faceindex.types import Match, Review, SearchResult

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["search"])

SearchId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="from a search answer")]
FaceId = Annotated[int, Path(ge=1, le=MAX_ID)]
_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "the image bytes"}
}


@router.post(
    "/probe/faces",
    response_model=ProbeOut,
    responses=errors(400, 403, 413, 503),  # 503: the request timeout
    summary="Find the faces in a photo (boxes only; the gallery is not searched)",
)
async def probe_faces(
    request: Request,
    image: Annotated[UploadFile, File(description="the probe photo")],
    actor: Actor = Depends(allow(Permission.SEARCH)),
) -> ProbeOut:
    st = state(request)
    data = await read_upload(image, st.settings.max_bytes)

    def detect(engine: Engine) -> ProbeOut:
        s = engine.settings
        analyzer = engine.probe_analyzer or engine.analyzer  # a worker process in the server
        found = analyzer.detect_image(data, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
        return ProbeOut(
            width=found.width,
            height=found.height,
            faces=[
                ProbeBoxOut(box=d.bbox.as_list(), score=round(d.score, 4)) for d in found.detections
            ],
        )

    return await st.runner.run(detect)


@router.post(
    "/searches",
    response_model=SearchOut,
    responses=errors(400, 403, 404, 413, 503),  # 503: the request timeout
    summary="Search the gallery for every face in an uploaded photo (or for one person: "
    "several photos with same_person, or a person_id)",
)
async def search(
    request: Request,
    case_reference: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT_PATTERN)],
    purpose: Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN)],
    image: Annotated[
        list[UploadFile] | None,
        File(
            description="the probe photo (JPEG, PNG, ...); up to 5 with same_person", max_length=5
        ),
    ] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    largest: Annotated[bool, Form(description="only the largest probe face")] = False,
    sources: Annotated[
        list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None,
        Form(description="search only these sources (default: all the purpose allows)"),
    ] = None,
    match_bound: Annotated[
        float | None,
        Form(gt=0, lt=1, description="this search's match bound (default: the setting)"),
    ] = None,
    same_person: Annotated[
        bool, Form(description="the photos show one person: search them as one template")
    ] = False,
    person_id: Annotated[
        int | None, Form(ge=1, le=MAX_ID, description="search by a person's faces, no photo")
    ] = None,
    fusion: Annotated[
        Literal["best-of", "mean"] | None,
        Form(description="how a template ranks results (default: the setting)"),
    ] = None,
    actor: Actor = Depends(allow(Permission.SEARCH)),
) -> Response:
    """Audited before any result is returned; if the audit log cannot be written the
    search fails (503) and returns nothing. A template (several photos of one person, or a
    person) answers one result whose bands count every template face's comparisons."""
    st = state(request)
    photos = [await read_upload(f, st.settings.max_bytes) for f in image or []]
    template = same_person or person_id is not None
    if not template and len(photos) != 1:
        raise InputError("send one photo (several only with same_person=true), or a person_id")

    named: list[str] = []  # the id ShownFaces gives it, which its audit entry keeps

    def name(shown: frozenset[int]) -> str:
        named.append(st.shown.record(actor.name, shown))
        return named[-1]

    def run(engine: Engine) -> tuple[list[SearchResult], dict[int, Review]]:
        gov = st.acting(engine, actor)
        if template:
            results = gov.search_template(
                photos,
                person=person_id,
                case=case_reference,
                purpose=purpose,
                fusion=fusion,
                top_k=top_k,
                sources=sources or None,
                match_bound=match_bound,
                name_search=name,
            )
            shown = [m.face_id for r in results for m in r.matches]
            return results, gov.decisions(case_reference, shown)
        results = gov.search(
            photos[0],
            case=case_reference,
            purpose=purpose,
            top_k=top_k,
            largest=largest,
            sources=sources or None,
            match_bound=match_bound,
            name_search=name,
        )
        shown = [m.face_id for r in results for m in r.matches]
        return results, gov.decisions(case_reference, shown)

    try:
        results, reviews = await st.runner.run(run)
    except Exception as exc:
        st.metrics.searches.labels(type(exc).__name__).inc()
        raise
    st.metrics.searches.labels("ok").inc()
    search_id = named[-1]
    originals = actor.can(Permission.VIEW_ORIGINALS)
    base = f"/v1/searches/{search_id}/faces"

    def links(m: Match) -> tuple[str | None, str | None]:
        original = f"{base}/{m.face_id}/original" if originals else None
        return f"{base}/{m.face_id}/thumbnail", original

    def render() -> bytes:
        body = search_dict(
            results,
            case_reference=case_reference,
            purpose=purpose,
            search_id=search_id,
            links=links,
            reviews=reviews,
        )
        return SearchOut.model_validate(body).model_dump_json().encode()

    # A crowd photo's answer is hundreds of matches: building, checking and encoding it in
    # a thread keeps the event loop (and /v1/health) answering meanwhile. The Response is
    # sent as it is; response_model above still documents it.
    return Response(await to_thread.run_sync(render), media_type="application/json")


@router.get(
    "/searches/{search_id}/faces/{face_id}/thumbnail",
    response_class=Response,
    responses={**_IMAGE, **errors(403, 404)},
    summary="The thumbnail of a face shown in one of the caller's searches",
)
async def thumbnail(
    request: Request,
    search_id: SearchId,
    face_id: FaceId,
    actor: Actor = Depends(allow(Permission.SEARCH)),
) -> Response:
    st = state(request)
    st.shown.check(actor.name, search_id, face_id)
    jpeg = await st.runner.light(lambda engine: engine.catalog.thumbnail(face_id))
    return Response(jpeg, media_type="image/jpeg", headers=_PRIVATE)


@router.get(
    "/searches/{search_id}/faces/{face_id}/original",
    response_class=Response,
    responses={**_IMAGE, **errors(403, 404)},
    summary="The original image holding a face shown in one of the caller's searches",
)
async def original(
    request: Request,
    search_id: SearchId,
    face_id: FaceId,
    actor: Actor = Depends(allow(Permission.VIEW_ORIGINALS)),
) -> Response:
    st = state(request)
    st.shown.check(actor.name, search_id, face_id)
    data = await st.runner.light(lambda engine: read_original(engine, face_id))
    return Response(data, media_type=sniff(data), headers=_PRIVATE)


_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def read_original(engine: Engine, face_id: int) -> bytes:
    """The original bytes of a face's image, read through its source and checked by sha256."""
    row = engine.catalog.faces([face_id]).get(face_id)
    if row is None:
        raise NotFoundError(f"no face {face_id}")
    for place in row.locations:
        try:
            record = engine.catalog.get_source(place.source)
            data = build_source(record, engine.settings).read(SourceItem(place.locator))
        except FaceIndexError:  # gone or unreadable here: try the next place it was seen
            continue
        if hashlib.sha256(data).hexdigest() == row.image_sha256:
            return data
    raise NotFoundError(f"the original of face {face_id} is no longer readable from its source")


_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]


def sniff(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return "application/octet-stream"
