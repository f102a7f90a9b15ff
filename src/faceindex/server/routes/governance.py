"""Deletion, opt-out, subject access and the audit log, through the governance facade."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["governance"])
