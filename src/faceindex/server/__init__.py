"""The HTTP API and web page: ``create_app(settings)``, run by ``faceindex serve``.

Heavy imports (FastAPI, the engine) happen when :func:`create_app` is first imported from
``faceindex.server.app``; importing this package alone does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from faceindex.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, **kwargs: Any) -> FastAPI:
    from faceindex.server.app import create_app as build

    return build(settings, **kwargs)
