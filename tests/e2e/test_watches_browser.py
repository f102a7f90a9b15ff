"""The Watches screen in real headless Chromium: an investigator adds a watch from a photo,
another photo of the person arrives in a new source, the alert shows with its thumbnail and
where it was found; an auditor sees it and cannot add one."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_server_browser import (  # noqa: F401  (fixtures)
    browser,
    loaded,
    page,
    screenshot,
    sign_in,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.needs_faces]

PATIENCE_MS = 120_000


@pytest.fixture(scope="module", autouse=True)
def _patient_server() -> Iterator[None]:
    """A first watch starts the analysis worker (models loaded in a new process): on a
    loaded machine that can pass the 30 s request timeout, so this module's server (built
    after this fixture) allows two minutes."""
    before = os.environ.get("FACEINDEX_REQUEST_TIMEOUT_S")
    os.environ["FACEINDEX_REQUEST_TIMEOUT_S"] = str(PATIENCE_MS // 1000)
    yield
    if before is None:
        os.environ.pop("FACEINDEX_REQUEST_TIMEOUT_S", None)
    else:
        os.environ["FACEINDEX_REQUEST_TIMEOUT_S"] = before


def _ingest_new_source(live_server: Any, folder: Path) -> None:
    """As the admin, over HTTP: register the folder and ingest it to the end."""
    admin = {"Authorization": f"Bearer {live_server.tokens['admin']}"}
    r = httpx.post(
        live_server.url + "/v1/sources",
        headers=admin,
        json={
            "name": "newsroom",
            "path": str(folder),
            "owner": "Newsroom",
            "legal_basis": "consent",
            "retention_days": 30,
        },
    )
    assert r.status_code == 201, r.text
    job = httpx.post(
        live_server.url + "/v1/ingest-jobs", headers=admin, json={"source": "newsroom"}
    )
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + PATIENCE_MS / 1000
    status = job.json()
    while status["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        status = httpx.get(
            live_server.url + f"/v1/ingest-jobs/{status['id']}", headers=admin
        ).json()
    assert status["status"] == "done", status


def test_investigator_watches_a_person_and_sees_the_alert(
    page: Any,  # noqa: F811
    live_server: Any,
    tmp_path: Path,
) -> None:
    page.set_default_timeout(PATIENCE_MS)
    sign_in(page, live_server.url, live_server.tokens["investigator"])
    page.click("#tabs button[data-tab=watches]")
    page.wait_for_selector("#watch-form:not([hidden])")
    page.wait_for_selector("#alert-cards:has-text('No alerts yet')")
    page.set_input_files("#watch-files", str(live_server.knn / "obama" / "obama2.jpg"))
    page.fill("#watch-case", "CASE-W-1")
    page.fill("#watch-purpose", "find a missing person")
    page.fill("#watch-days", "7")
    page.click("#watch-add")
    page.wait_for_selector("#watch-note:has-text('Watch 1 for case CASE-W-1 added')")
    row = page.locator("#watch-rows tr[data-watch-id='1']")
    assert "live" in row.inner_text() and "CASE-W-1" in row.inner_text()

    folder = tmp_path / "newsroom"
    (folder / "obama").mkdir(parents=True)
    (folder / "biden").mkdir()
    shutil.copy(live_server.knn / "obama" / "test_obama1.jpg", folder / "obama" / "t1.jpg")
    shutil.copy(live_server.knn / "biden" / "biden2.jpg", folder / "biden" / "b2.jpg")
    _ingest_new_source(live_server, folder)

    page.click("#alerts-refresh")
    page.wait_for_selector(".card.alert")
    cards = page.locator(".card.alert")
    assert cards.count() == 1  # Obama's new photo; not Biden's
    text = cards.first.inner_text()
    assert "newsroom: obama/t1.jpg" in text and "case CASE-W-1" in text
    assert "distance" in text
    wait_until(lambda: loaded(page, ".card.alert .thumb"))
    screenshot(page, tmp_path, "watches")

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    page.wait_for_selector("#watch-note:has-text('Watch 1 removed')")
    page.wait_for_selector("#watch-rows tr[data-watch-id='1']:has-text('removed')")
    assert page.locator(".card.alert").count() == 1  # the alert stays with the case


def test_auditor_sees_every_watch_and_cannot_add_one(
    page: Any,  # noqa: F811
    live_server: Any,
) -> None:
    photo = (live_server.knn / "biden" / "biden2.jpg").read_bytes()
    made = httpx.post(
        live_server.url + "/v1/watches",
        headers={"Authorization": f"Bearer {live_server.tokens['investigator']}"},
        files={"images": ("b.jpg", photo, "image/jpeg")},
        data={"case_reference": "CASE-W-2", "purpose": "audit me"},
        timeout=PATIENCE_MS / 1000,
    )
    assert made.status_code == 201, made.text
    sign_in(page, live_server.url, live_server.tokens["auditor"])
    page.click("#tabs button[data-tab=watches]")
    row = page.locator(f"#watch-rows tr[data-watch-id='{made.json()['id']}']")
    row.wait_for()
    assert "investigator-user" in row.inner_text() and "CASE-W-2" in row.inner_text()
    assert row.locator("button").count() == 0  # not the auditor's to end
    assert page.is_hidden("#watch-form")
