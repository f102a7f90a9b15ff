"""The API docs, ``/docs`` (Swagger UI) and ``/redoc``, served wholly from the app.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so with no internet they are
blank. The assets here come from the ``fastapi-offline`` package (MIT), which ships the
``swagger-ui-dist`` bundle (Apache-2.0) and ReDoc's standalone build (MIT) as plain files;
they are mounted at :data:`ASSETS` like the web page's own. The pages' Content-Security-Policy
allows nothing but this origin, and Swagger UI's validator badge (an image from
validator.swagger.io) is switched off.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from faceindex.errors import MissingDependency

__all__ = ["ASSETS", "install_docs"]

ASSETS = "/docs-assets"
# Swagger UI starts itself from an inline script and styles elements inline; ReDoc runs its
# search in a worker made from a blob: URL. Nothing may come from another origin.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assets_dir() -> Path:
    """The folder of bundled Swagger UI and ReDoc files (from ``fastapi-offline``)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "the API docs need fastapi-offline (it ships Swagger UI): "
            "pip install 'faceindex[server]'"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "static"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise MissingDependency(f"fastapi-offline has no Swagger UI bundle in {folder}")
    return folder


def install_docs(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` (the app is built with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added)."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
        return HTMLResponse(bytes(page.body), headers=_HEADERS)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return HTMLResponse(bytes(page.body), headers=_HEADERS)
