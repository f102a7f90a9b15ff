"""``create_app(settings)``: the HTTP API and the web page over one engine.

All state hangs off ``app.state.faceindex`` (see :class:`~faceindex.server.routes.common.State`);
nothing is module-global, so a test can build several apps side by side.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from faceindex import __version__
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.database import open_database
from faceindex.governance.job_records import JobRecords
from faceindex.governance.roles import Actor
from faceindex.governance.service import Governance
from faceindex.index.synced import SyncedIndex
from faceindex.pipeline.runner import Progress
from faceindex.server.accounts import AccountStore
from faceindex.server.concurrency import EnginePool, EngineRunner, LockedIndex
from faceindex.server.docs import install_docs
from faceindex.server.errors import PROBLEM_JSON, install_error_handlers
from faceindex.server.jobs import IngestJobs
from faceindex.server.limits import BodyLimit, known_query_only
from faceindex.server.metrics import Metrics
from faceindex.server.ratelimit import RateLimiter
from faceindex.server.ratelimit_shared import SharedRateLimiter
from faceindex.server.routes import casework, ops, privacy, search, sources, watches, web
from faceindex.server.routes import governance as governance_routes
from faceindex.server.routes import persons as persons_routes
from faceindex.server.routes.common import State
from faceindex.server.searches import ShownFaces
from faceindex.server.workers import AnalysisWorker, RemoteAnalyzer
from faceindex.types import IngestSummary

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, engine: Engine | None = None, warm: bool = False) -> FastAPI:
    """Build the app. Opens the engine home (which must exist) unless ``engine`` is given;
    either way the app closes the engine when it shuts down. ``warm`` (``faceindex serve``)
    starts every analysis worker now, so that no probe waits for one to load its models."""
    engine = engine or Engine.open(settings)
    settings = engine.settings
    _lock_index(engine)
    pool = EnginePool(engine, settings.server_threads, remote_analyzers(settings, start=warm))
    ingest_engine = pool.view()
    gov = Governance.open(engine)

    def run_ingest(
        actor: Actor, source: str, progress: Callable[[Progress], None]
    ) -> IngestSummary:
        job = Governance(ingest_engine, gov.audit, gov.store, actor)
        # Always in worker processes, even with workers=1: an in-process ingest would run
        # dlib's landmark and embedding calls in a server thread, under the GIL that every
        # request needs.
        return job.ingest(source, progress=progress, in_process=False)

    st = State(
        settings=settings,
        runner=EngineRunner(
            pool,
            threads=settings.server_threads,
            queue=settings.server_queue,
            timeout_s=settings.request_timeout_s,
        ),
        accounts=AccountStore.for_home(settings.home, settings.governance_url),
        jobs=IngestJobs(
            run_ingest,
            JobRecords(
                open_database(settings.governance_url, settings.home, "governance"),
                stale_s=settings.ingest_job_stale_s,
            ),
        ),
        shown=ShownFaces(open_database(settings.governance_url, settings.home, "governance")),
        metrics=Metrics(),
        governance=gov,
    )

    limiter = rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            # What the server made while starting (engine, routes, schemas) lives as long as
            # it does: move it out of the collector's reach. Left in, each full collection
            # walks all of it on the event loop, holding every request: ~90-100 ms on this
            # box (docs/BENCHMARKS.md, "The /v1/health maximum was the client's collector").
            gc.freeze()
        yield
        close_state(st, engine)
        if isinstance(limiter, SharedRateLimiter):
            limiter.close()

    app = FastAPI(
        title="faceindex",
        version=__version__,
        summary="Lawful face search over the collections an organisation may hold",
        description="Every route but /v1/health, /metrics and the web page needs "
        "'Authorization: Bearer <token>'; errors are application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs and /redoc from bundled assets, no CDN
        redoc_url=None,
    )
    app.state.faceindex = st
    app.state.accounts = st.accounts
    app.state.limiter = limiter
    install_error_handlers(app)
    app.middleware("http")(st.metrics.middleware)
    app.add_middleware(BodyLimit, max_bytes=settings.max_bytes)
    for module in (
        ops,
        search,
        sources,
        governance_routes,
        persons_routes,
        watches,
        privacy,
        casework,
    ):
        app.include_router(module.router, dependencies=[Depends(known_query_only)])
    app.include_router(web.router)
    web.mount_static(app)
    install_docs(app)
    app.openapi = _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """The app for the home ``FACEINDEX_HOME`` names (with every other ``FACEINDEX_*``
    setting): the import-string factory each process of ``faceindex serve --workers N``
    calls (uvicorn starts them; each opens its own engine over the shared home)."""
    return create_app(Settings.load(), warm=True)


def rate_limiter(settings: Settings) -> RateLimiter | SharedRateLimiter:
    """Per process (the default), or one budget per token across the home's processes."""
    per_minute, burst = settings.rate_limit_per_minute, settings.rate_limit_burst
    if settings.rate_limit_scope == "home":
        db = open_database(settings.governance_url, settings.home, "governance")
        return SharedRateLimiter(db, per_minute=per_minute, burst=burst)
    return RateLimiter(per_minute=per_minute, burst=burst)


def _lock_index(engine: Engine) -> None:
    """Searches share the index, changes wait for them. An engine's own index follows the
    catalog (what other processes write is applied before each search and count), so the
    lock goes inside it, around the backend, where those changes are applied."""
    index = engine.index
    if isinstance(index, SyncedIndex):
        if not isinstance(index.inner, LockedIndex):
            index.inner = LockedIndex(index.inner)
    elif not isinstance(index, LockedIndex):
        engine.index = LockedIndex(index)


def remote_analyzers(settings: Settings, *, start: bool = False) -> list[RemoteAnalyzer]:
    """One analysis worker process per engine slot (dlib holds the GIL for a whole
    detection, so in a thread it would stall every other request), started now with
    ``start`` (each loads its models in the background), else at its first probe. A worker
    started at its first probe makes that probe wait for its models: ~4 s, measured as the
    slowest in-the-wild probe of benchmarks/probe_latency.py before serve started them."""
    if settings.server_analysis != "process":
        return []
    workers = [
        AnalysisWorker(settings, max_rss_mb=settings.analysis_worker_max_rss_mb)
        for _ in range(settings.server_threads)
    ]
    if start:
        for worker in workers:
            worker.start()
    return [RemoteAnalyzer(worker) for worker in workers]


def close_state(st: State, engine: Engine) -> None:
    st.jobs.shutdown()
    st.runner.pool.close()
    st.accounts.close()
    st.shown.close()
    st.governance.close()
    engine.close()


def _openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Error answers are documented as application/problem+json, not application/json."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for op in path.values():
                for status, response in op.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = schema
        return schema

    return openapi
