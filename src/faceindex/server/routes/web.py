"""The web page: one server-rendered HTML document, a script and a stylesheet."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from faceindex import __version__

__all__ = ["mount_static", "router"]

HERE = Path(__file__).resolve().parent.parent
router = APIRouter(include_in_schema=False)

# The page only talks to its own origin; images arrive as blob: URLs made from fetches that
# carry the bearer token, so no token ever sits in a URL.
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    html = (HERE / "templates" / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{version}}", __version__)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
