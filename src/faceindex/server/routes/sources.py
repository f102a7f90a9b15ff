"""Registered sources: list them, register one, and run ingest jobs over them."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Request

from faceindex.engine import Engine
from faceindex.governance.roles import Actor, Permission
from faceindex.server.auth import allow, authenticated
from faceindex.server.jobs import Job
from faceindex.server.routes.common import errors, state
from faceindex.server.schemas import IngestJobOut, IngestJobRequest, SourceIn, SourceOut
from faceindex.sources.base import SourceRecord

__all__ = ["router", "source_out"]

router = APIRouter(prefix="/v1", tags=["sources"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]


def source_out(r: SourceRecord) -> SourceOut:
    # The folder path (uri) stays on the server: it is an operator's detail, not a user's.
    return SourceOut(
        name=r.name,
        kind=r.kind,
        owner=r.owner,
        legal_basis=r.legal_basis,
        legal_reference=r.legal_reference,
        purposes=list(r.purposes),
        retention_days=r.retention_days,
        jurisdiction=r.jurisdiction,
        created_at=r.created_at,
    )


@router.get(
    "/sources",
    response_model=list[SourceOut],
    responses=errors(),
    summary="Every registered source (any signed-in role)",
)
async def list_sources(request: Request, actor: Actor = Depends(authenticated)) -> list[SourceOut]:
    rows = await state(request).runner.light(lambda e: e.catalog.list_sources())
    return [source_out(r) for r in rows]


@router.post(
    "/sources",
    response_model=SourceOut,
    status_code=201,
    responses=errors(400, 403),
    summary="Register a folder on the server as a source",
)
async def add_source(
    request: Request,
    body: SourceIn,
    actor: Actor = Depends(allow(Permission.MANAGE_SOURCES)),
) -> SourceOut:
    st = state(request)

    def add(engine: Engine) -> SourceRecord:
        return st.acting(engine, actor).add_source(
            body.name,
            path=body.path,
            owner=body.owner,
            legal_basis=body.legal_basis.value,
            retention_days=body.retention_days,
            legal_reference=body.legal_reference,
            purposes=tuple(body.purposes),
            jurisdiction=body.jurisdiction,
        )

    return source_out(await st.runner.light(add))


def job_out(job: Job) -> IngestJobOut:
    return IngestJobOut(
        id=job.id,
        source=job.source,
        status=job.status,
        created_at=job.created_at,
        finished_at=job.finished_at,
        total=job.total,
        done=job.done,
        faces=job.faces,
        failed=job.failed,
        error=job.error,
    )


@router.post(
    "/ingest-jobs",
    response_model=IngestJobOut,
    status_code=202,
    responses=errors(403, 404),
    tags=["ingest"],
    summary="Start ingesting a source in the background",
)
async def start_ingest(
    request: Request,
    body: IngestJobRequest,
    actor: Actor = Depends(allow(Permission.INGEST)),
) -> IngestJobOut:
    st = state(request)
    await st.runner.light(lambda e: e.catalog.get_source(body.source))  # 404 now, not later
    # The jobs are rows of the governance database: read and written off the event loop.
    return job_out(await to_thread.run_sync(st.jobs.start, actor, body.source))


@router.get(
    "/ingest-jobs",
    response_model=list[IngestJobOut],
    responses=errors(403),
    tags=["ingest"],
    summary="The caller's ingest jobs, newest first",
)
async def list_jobs(
    request: Request, actor: Actor = Depends(allow(Permission.INGEST))
) -> list[IngestJobOut]:
    return [job_out(j) for j in await to_thread.run_sync(state(request).jobs.of, actor.name)]


@router.get(
    "/ingest-jobs/{job_id}",
    response_model=IngestJobOut,
    responses=errors(403, 404),
    tags=["ingest"],
    summary="One of the caller's ingest jobs, with progress",
)
async def get_job(
    request: Request, job_id: JobId, actor: Actor = Depends(allow(Permission.INGEST))
) -> IngestJobOut:
    return job_out(await to_thread.run_sync(state(request).jobs.get, actor.name, job_id))
