"""The web page in real headless Chromium: sign in, pick a photo, search, compare."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.needs_faces]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium on PATH (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Saved in tmp_path, and in $FACEINDEX_SCREENSHOTS when set (to look at by eye)."""
    out = tmp_path / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    if target := os.environ.get("FACEINDEX_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(target) / out.name)
    return out


def wait_until(check: Any, timeout_s: float = 20.0) -> None:
    """Poll from Python: the page's CSP forbids eval, which page.wait_for_function needs."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the page")
        time.sleep(0.1)


def loaded(page: Any, selector: str) -> bool:
    return bool(
        page.locator(selector).first.evaluate("img => img.complete && img.naturalWidth > 0")
    )


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#tabs:not([hidden])")


def test_investigator_finds_the_right_person_and_compares(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    sign_in(page, live_server.url, live_server.tokens["investigator"])
    assert page.is_visible("#search")
    assert not page.is_visible("#tabs button[data-tab=audit]")

    # Another photo of Obama than the one in the gallery.
    page.set_input_files("#probe-file", str(live_server.knn / "obama" / "obama2.jpg"))
    page.wait_for_selector("#probe-stage .box.chosen")
    assert page.locator("#probe-stage .box").count() == 1
    page.fill("#case", "CASE-2024-001")
    page.fill("#purpose", "identify a person in a press photo")
    page.click("#search-btn")
    page.wait_for_selector(".card")

    best = page.locator(".card").first
    assert "obama/obama.jpg" in best.inner_text()
    assert "match" in (best.get_attribute("class") or "").split()
    text = best.inner_text()
    assert "of a gallery this size shows a stranger this close" in text
    assert "quality" in text and "distance" in text
    assert "faces searched" in page.inner_text("#results")
    wait_until(lambda: loaded(page, ".card .thumb"))
    for other in ("biden", "kit_harington", "rose_leslie"):
        card = page.locator(".card", has_text=f"{other}/")
        if card.count():
            assert "no-match" in (card.first.get_attribute("class") or "")

    best.locator("button.open").click()
    wait_until(lambda: loaded(page, "#cmp-match"))
    page.wait_for_selector("#cmp-match-stage .box")
    assert "obama/obama.jpg" in page.inner_text("#cmp-caption")
    shot = screenshot(page, tmp_path, "search-compare")
    assert shot.stat().st_size > 10_000


def test_a_result_card_lists_every_location_of_the_photo(page: Any, live_server: Any) -> None:
    # The gallery holds obama.jpg (press) and a quality-60 copy of it (mirror): one photo
    # group, so one card, listing both places (before: the card showed the first only).
    sign_in(page, live_server.url, live_server.tokens["investigator"])
    page.set_input_files("#probe-file", str(live_server.knn / "obama" / "obama2.jpg"))
    page.wait_for_selector("#probe-stage .box.chosen")
    page.fill("#case", "CASE-2024-002")
    page.fill("#purpose", "where else was this photo published")
    page.click("#search-btn")
    page.wait_for_selector(".card")
    cards = page.locator(".card", has_text="obama")
    assert cards.count() == 1
    text = cards.first.inner_text()
    assert "press: obama/obama.jpg" in text and "mirror: obama-q60.jpg" in text
    assert "2 locations of this photo" in text
    assert cards.first.locator(".locations li").count() == 2


def test_bad_token_is_refused_on_the_page(page: Any, live_server: Any) -> None:
    page.goto(live_server.url + "/")
    page.fill("#token", "fi_not-a-real-token")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:not(:empty)")
    assert "Authentication required" in page.inner_text("#signin-error")
    assert page.is_hidden("#tabs")


def test_auditor_sees_the_verified_audit_log(page: Any, live_server: Any, tmp_path: Path) -> None:
    sign_in(page, live_server.url, live_server.tokens["auditor"])
    assert not page.is_visible("#tabs button[data-tab=search]")
    page.wait_for_selector("#audit-status.ok")
    assert "Chain verified" in page.inner_text("#audit-status")
    assert page.locator("#audit-rows tr").count() >= 1
    assert "audit-verify" in page.inner_text("#audit-rows")
    screenshot(page, tmp_path, "audit")
    page.click("#tabs button[data-tab=receipts]")
    assert page.is_visible("#receipts")


def test_admin_deletes_a_source_and_sees_its_receipt(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    import httpx

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    created = httpx.post(
        live_server.url + "/v1/sources",
        headers={"Authorization": f"Bearer {live_server.tokens['admin']}"},
        json={
            "name": "scratch",
            "path": str(scratch),
            "owner": "QA",
            "legal_basis": "consent",
            "retention_days": 1,
        },
    )
    assert created.status_code == 201, created.text
    sign_in(page, live_server.url, live_server.tokens["admin"])
    page.click("#tabs button[data-tab=admin]")
    row = page.locator("#source-rows tr", has_text="scratch")
    row.wait_for()
    page.once("dialog", lambda dialog: dialog.accept("no longer needed"))
    row.locator("button.danger").click()
    page.wait_for_selector("#admin-note:has-text('receipt rcp-')")
    assert page.locator("#source-rows tr", has_text="scratch").count() == 0
    page.click("#tabs button[data-tab=receipts]")
    page.wait_for_selector("#receipt-rows tr")
    assert "scratch" in page.inner_text("#receipt-rows")
    screenshot(page, tmp_path, "receipts")
