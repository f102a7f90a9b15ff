"""The privacy officer's screens and the auditor's view in real headless Chromium: subject
access with the thumbnails of what is held, opt-out, person erasure, tombstones with their
audited lift, exports made and downloaded, and the audit log's columns, filters and pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from faceindex.config import Settings
from tests.e2e.test_server_browser import browser, loaded, page, screenshot, sign_in, wait_until
from tests.live import serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.needs_faces]
__all__ = ["browser", "page"]  # the browser fixtures, shared with the search page's tests

GALLERY = {
    "press": ["obama/obama.jpg", "biden/biden.jpg", "kit_harington/john1.jpeg"],
    "lacamoire": ["alex_lacamoire/img1.jpg"],  # only this source holds it: erased in a test
}
ROLES = ("admin", "investigator", "auditor", "privacy-officer")


@dataclass(frozen=True)
class Live:
    url: str
    tokens: dict[str, str]
    knn: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def live(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    root = tmp_path_factory.mktemp("privacy-live")
    knn = shared_faces / "face-recognition-knn"
    settings = Settings.load(root / "home", workers=1, request_timeout_s=300)  # a shared box
    engine = Engine.open(settings, create=True)
    for source, rels in GALLERY.items():
        for rel in rels:
            (root / source / Path(rel).parent).mkdir(parents=True, exist_ok=True)
            shutil.copy(knn / rel, root / source / rel)
        engine.add_source(
            source, path=str(root / source), owner="o", legal_basis="consent", retention_days=365
        )
        engine.ingest(source, in_process=True)
    store = AccountStore.for_home(settings.home)
    tokens = {role: store.add(f"{role}-user", role) for role in ROLES}
    store.close()
    app = create_app(settings, engine=engine)
    with serve_in_thread(app) as url:
        yield Live(url, tokens, knn)


def open_privacy(page: Any, live: Live, who: str) -> None:
    sign_in(page, live.url, live.tokens[who])
    page.click("#tabs button[data-tab=privacy]")
    page.wait_for_selector("#privacy:not([hidden])")


def test_officer_sees_what_is_held_with_thumbnails(page: Any, live: Live, tmp_path: Path) -> None:
    sign_in(page, live.url, live.tokens["privacy-officer"])
    assert not page.is_visible("#tabs button[data-tab=search]")
    page.click("#tabs button[data-tab=privacy]")
    assert not page.is_visible("#pv-export-form")  # no export permission: the list only
    page.set_input_files("#pv-photos", str(live.knn / "obama" / "obama2.jpg"))
    page.fill("#pv-ref", "SAR-2026-014")
    page.click("#pv-access")
    page.wait_for_selector(".card.held")
    card = page.locator(".card.held").first
    assert "press: obama/obama.jpg" in card.inner_text()
    assert page.locator(".card.held").count() == 1  # only Obama is held of this person
    wait_until(lambda: loaded(page, ".card.held .thumb"))
    assert "location(s) hold faces" in page.inner_text("#pv-note")
    screenshot(page, tmp_path, "privacy-subject-access")


def test_officer_lifts_a_tombstone_with_a_reason(page: Any, live: Live) -> None:
    r = httpx.delete(
        f"{live.url}/v1/sources/lacamoire", headers=live.h("admin"), params={"reason": "contract"}
    )
    assert r.status_code == 200, r.text
    open_privacy(page, live, "privacy-officer")
    row = page.locator("#pv-tomb-rows tr", has_text=r.json()["id"])
    row.wait_for()
    page.once("dialog", lambda dialog: dialog.accept("ruling 12: consent renewed"))
    row.locator("button.lift").click()
    page.wait_for_selector("#pv-note:has-text('lifted')")
    wait_until(lambda: page.locator("#pv-tomb-rows tr", has_text=r.json()["id"]).count() == 0)
    log = httpx.get(
        f"{live.url}/v1/audit", headers=live.h("auditor"), params={"action": "tombstone-lift"}
    ).json()
    assert [e["details"]["reason"] for e in log["entries"]] == ["ruling 12: consent renewed"]


def test_officer_opts_a_person_out_and_erases_another(page: Any, live: Live) -> None:
    open_privacy(page, live, "privacy-officer")
    page.set_input_files("#pv-photos", str(live.knn / "kit_harington" / "john2.jpeg"))
    page.fill("#pv-ref", "opt-out request 7")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#pv-optout")
    page.wait_for_selector("#pv-note:has-text('Opted out: receipt rcp-')")
    assert "1 faces" in page.inner_text("#pv-note")
    page.locator("#pv-optout-rows tr", has_text="opt-out request 7").wait_for()

    page.set_input_files("#pv-photos", str(live.knn / "biden" / "biden2.jpg"))
    page.fill("#pv-ref", "erasure request 8")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#pv-erase")
    page.wait_for_selector("#pv-note:has-text('Erased: receipt rcp-')")
    assert "1 faces" in page.inner_text("#pv-note")
    page.click("#pv-access")  # the erased person is held no more
    page.wait_for_selector("#pv-note:has-text('Nothing held')")


def test_investigator_exports_a_source_and_downloads_it(
    page: Any, live: Live, tmp_path: Path
) -> None:
    open_privacy(page, live, "investigator")
    assert not page.is_visible("#pv-person .danger")  # no delete permission
    page.select_option("#pv-export-source", "press")
    page.fill("#pv-export-case", "CASE-77")
    page.fill("#pv-export-purpose", "court order 77")
    page.click("#pv-export-form button[type=submit]")
    page.wait_for_selector("#pv-note:has-text('rows (registered')")
    row = page.locator("#pv-export-rows tr", has_text="CASE-77")
    row.wait_for()
    with page.expect_download() as info:
        row.locator("button.download").click()
    saved = tmp_path / "export.csv"
    info.value.save_as(str(saved))
    text = saved.read_text()
    assert text.startswith("face_id,image_id,box") and "obama/obama.jpg" in text


def test_auditor_filters_and_pages_the_log(page: Any, live: Live, tmp_path: Path) -> None:
    photo = (live.knn / "obama" / "obama2.jpg").read_bytes()
    for n in range(3):
        r = httpx.post(
            f"{live.url}/v1/searches",
            headers=live.h("investigator"),
            files={"image": ("p.jpg", photo, "image/jpeg")},
            data={"case_reference": f"AUD-{n}", "purpose": "audit view test"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
    sign_in(page, live.url, live.tokens["auditor"])
    page.wait_for_selector("#audit-status.ok")
    page.fill("#af-action", "search")
    page.fill("#af-limit", "2")
    page.click("#audit-filter button[type=submit]")
    # the filtered page replaces the unfiltered one (which may hold AUD-2 as well)
    wait_until(lambda: page.locator("#audit-rows tr").count() == 2)
    page.wait_for_selector("#audit-rows tr td.case:has-text('AUD-2')")
    rows = page.locator("#audit-rows tr")
    assert rows.count() == 2
    first = rows.first.inner_text()
    assert "AUD-2" in first and "audit view test" in first and "press" in first
    assert page.locator("#audit-rows tr td.faces").first.inner_text().split(":")[0].isdigit()
    page.click("#audit-older")
    page.wait_for_selector("#audit-page:has-text('page 2')")
    assert "AUD-0" in page.inner_text("#audit-rows")
    page.click("#audit-newer")
    page.wait_for_selector("#audit-page:has-text('page 1')")
    page.fill("#af-action", "")
    page.fill("#af-case", "aud-1")
    page.click("#audit-filter button[type=submit]")
    page.wait_for_selector("#audit-page:has-text('1 entries')")
    assert page.locator("#audit-rows tr").count() == 1
    page.click("#af-anchor")
    page.wait_for_selector("#audit-anchor:has-text('Signed head')")
    screenshot(page, tmp_path, "audit-filtered")
