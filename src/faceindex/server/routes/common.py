"""Helpers the route modules share: the app's state, documented error answers, uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, UploadFile

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import ImageTooLarge
from faceindex.governance.roles import Actor
from faceindex.governance.service import Governance
from faceindex.server.accounts import AccountStore
from faceindex.server.concurrency import EngineRunner
from faceindex.server.jobs import IngestJobs
from faceindex.server.metrics import Metrics
from faceindex.server.schemas import Problem
from faceindex.server.searches import ShownFaces

__all__ = ["State", "errors", "read_upload", "state"]

_REASONS = {
    400: "Bad request",
    401: "No token, or an unknown or revoked one",
    403: "The caller's role lacks the permission",
    404: "No such object (or not the caller's)",
    413: "Upload over the byte or pixel limit",
    422: "Invalid request or unusable image (problem+json)",
    429: "Rate limit or server capacity reached; see Retry-After",
    503: "Timed out, or storage or audit unavailable",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these problem statuses (plus 400, 401, 422 and 429 always)."""
    wanted = sorted({400, 401, 422, 429, *statuses})
    return {s: {"model": Problem, "description": _REASONS.get(s, "Error")} for s in wanted}


@dataclass(frozen=True)
class State:
    settings: Settings
    runner: EngineRunner
    accounts: AccountStore
    jobs: IngestJobs
    shown: ShownFaces
    metrics: Metrics
    governance: Governance  # owns the audit log and governance store of the engine home

    def acting(self, engine: Engine, actor: Actor) -> Governance:
        """The facade for one call: this thread's engine view, the shared log and store."""
        return Governance(engine, self.governance.audit, self.governance.store, actor)


def state(request: Request) -> State:
    return request.app.state.faceindex


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The uploaded file's bytes, refusing more than ``max_bytes``."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"upload is over the {max_bytes}-byte limit")
    return data
