"""Review decisions and the Case screen in real headless Chromium: an investigator marks a
candidate on its result card, sees the decision on the next search of the case, and finds
the case's searches, candidates and decisions on the Case screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_server_browser import browser, page, screenshot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.needs_faces]
__all__ = ["browser", "page"]  # the fixtures, shared with the search screen's tests


def search(page: Any, photo: Path, case: str) -> None:
    page.set_input_files("#probe-file", str(photo))
    page.wait_for_selector("#probe-stage .box.chosen")
    page.fill("#case", case)
    page.fill("#purpose", "identify a person in a press photo")
    page.click("#search-btn")
    page.wait_for_selector(".card .review")


def test_investigator_reviews_a_candidate_and_sees_the_case(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    sign_in(page, live_server.url, live_server.tokens["investigator"])
    search(page, live_server.knn / "obama" / "obama2.jpg", "CASE-REVIEW-1")
    best = page.locator(".card").first
    assert "obama/obama.jpg" in best.inner_text()
    assert "Not reviewed" in best.locator(".review .decided").inner_text()
    best.locator(".review input").fill("same ear and hairline")
    best.locator(".review button[data-decision=confirmed]").click()
    page.wait_for_selector(".card .review .decided.confirmed")
    decided = best.locator(".review .decided").inner_text()
    assert "Reviewed confirmed by investigator-user" in decided and "same ear" in decided
    screenshot(page, tmp_path, "review-card")

    # the next search of the same case shows the decision beside the match
    search(page, live_server.knn / "obama" / "obama2.jpg", "CASE-REVIEW-1")
    page.wait_for_selector(".card .review .decided.confirmed")
    assert "same ear" in page.locator(".card").first.locator(".decided").inner_text()

    page.click("#tabs button[data-tab=case]")  # opens on the case just searched
    page.wait_for_selector("#case-view:not([hidden])")
    assert page.locator("#case-searches tr").count() == 2
    assert "identify a person" in page.inner_text("#case-searches")
    row = page.locator("#case-candidates tr", has_text="confirmed")
    assert row.count() == 1 and "same ear and hairline" in row.inner_text()
    assert "investigator-user" in row.inner_text()
    assert "press: obama/obama.jpg" in row.inner_text()
    assert page.locator("#case-candidates tr", has_text="not reviewed").count() >= 1
    screenshot(page, tmp_path, "case")

    page.fill("#case-ref", "NOT-MY-CASE")
    page.click("#case-form button[type=submit]")
    page.wait_for_selector("#case-error:not(:empty)")
    assert "no case" in page.inner_text("#case-error")


def test_auditor_reads_a_case_but_has_no_search_tab(page: Any, live_server: Any) -> None:
    sign_in(page, live_server.url, live_server.tokens["auditor"])
    assert not page.is_visible("#tabs button[data-tab=search]")
    page.click("#tabs button[data-tab=case]")
    page.fill("#case-ref", "CASE-REVIEW-1")
    page.click("#case-form button[type=submit]")
    page.wait_for_selector("#case-view:not([hidden])")
    assert page.locator("#case-candidates tr", has_text="confirmed").count() == 1
