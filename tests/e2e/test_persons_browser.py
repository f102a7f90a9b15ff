"""The Persons screen in real headless Chromium: build, open a person, name it, merge,
split and take a face out, over a live server holding real photos of four people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_server_browser import browser, loaded, page, screenshot, sign_in, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.needs_faces]
__all__ = ["browser", "page"]  # the fixtures, shared with the search screen's tests


def cards(page: Any) -> list[str]:
    return [c.get_attribute("data-person") for c in page.locator("#person-grid .card").all()]


def test_investigator_builds_names_merges_and_splits_persons(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    sign_in(page, live_server.url, live_server.tokens["investigator"])
    page.click("#tabs button[data-tab=persons]")
    page.wait_for_selector("#persons-build:not([hidden])")
    page.click("#persons-build")
    page.wait_for_selector("#persons-status:has-text('faces placed')")
    wait_until(lambda: len(cards(page)) == 4)  # four people, one photo each
    wait_until(lambda: loaded(page, "#person-grid .card .thumb"))
    first, second = cards(page)[:2]

    page.locator(f'#person-grid .card[data-person="{first}"] button.open').click()
    page.wait_for_selector("#person-detail:not([hidden])")
    page.fill("#person-label", "Case 7 subject")
    page.click("#person-save")
    page.wait_for_selector("#person-title:has-text('Case 7 subject')")
    grid_card = page.locator(f'#person-grid .card[data-person="{first}"]')
    wait_until(lambda: "Case 7 subject" in grid_card.inner_text())

    page.fill("#person-merge-id", second)
    page.click("#person-merge")
    page.wait_for_selector("#person-title:has-text('2 faces')")
    wait_until(lambda: len(cards(page)) == 3)
    assert page.locator("#person-faces .card").count() == 2
    wait_until(lambda: loaded(page, "#person-faces .card .thumb"))
    where = page.inner_text("#person-faces")
    assert "press:" in where  # every face shows where it was found
    screenshot(page, tmp_path, "persons-merged")

    page.locator("#person-faces input.pick").first.check()
    page.click("#person-split")
    page.wait_for_selector("#persons-status:has-text('Split off as person')")
    page.wait_for_selector("#person-title:has-text('1 faces')")
    wait_until(lambda: len(cards(page)) == 4)

    page.locator("#person-faces button.remove").first.click()
    page.wait_for_selector("#person-detail", state="hidden")  # its only face went
    wait_until(lambda: first not in cards(page) and len(cards(page)) == 4)
    assert page.inner_text("#persons-error") == ""


def test_auditor_has_no_persons_screen(page: Any, live_server: Any) -> None:
    sign_in(page, live_server.url, live_server.tokens["auditor"])
    assert not page.is_visible("#tabs button[data-tab=persons]")
