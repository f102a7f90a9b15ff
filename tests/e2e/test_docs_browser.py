"""The API docs in real headless Chromium with no way out: Swagger UI and ReDoc render the
app's own operations, and the browser asks nothing of any other origin."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from faceindex.config import Settings
from tests.e2e.test_server_browser import CHROMIUM_ARGS
from tests.live import serve_in_thread

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:

    from faceindex.engine import Engine
    from faceindex.server.app import create_app

    home = tmp_path_factory.mktemp("docs") / "home"
    engine = Engine.open(Settings.load(home, workers=1), create=True)
    app = create_app(engine.settings, engine=engine)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def offline_page(docs_server: str) -> Iterator[tuple[Any, list[str]]]:
    """A page whose every request to another origin is recorded and aborted (no internet)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium on PATH (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    elsewhere: list[str] = []
    origin = urlsplit(docs_server).netloc

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc == origin:
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context()
        context.route("**/*", route)
        page = context.new_page()
        yield page, elsewhere
        context.close()
        browser.close()


def test_swagger_ui_renders_the_api_offline(
    offline_page: tuple[Any, list[str]], docs_server: str, tmp_path: Path
) -> None:
    page, elsewhere = offline_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(docs_server + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert "faceindex" in page.inner_text(".swagger-ui .info .title")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/searches" in p for p in paths) and len(paths) >= 20
    page.screenshot(path=str(tmp_path / "docs.png"))
    assert not elsewhere, f"/docs asked other origins for {elsewhere}"
    assert not errors


def test_redoc_renders_the_api_offline(
    offline_page: tuple[Any, list[str]], docs_server: str
) -> None:
    page, elsewhere = offline_page
    page.goto(docs_server + "/redoc")
    heading = page.locator("h2", has_text="Search the gallery for every face")
    heading.first.wait_for(timeout=20_000)  # an operation's heading: ReDoc rendered the spec
    assert not elsewhere, f"/redoc asked other origins for {elsewhere}"
