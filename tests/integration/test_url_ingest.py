"""URL-list sources through the engine: a trickling server costs one timeout and a recorded
failure, and a deny-listed host is refused at registration in any spelling."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceindex.config import Settings
from faceindex.errors import SourceRefused
from tests.unit.test_sources_url import trickler  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[object]:
    from faceindex.engine import Engine

    settings = Settings.load(
        tmp_path / "home", workers=1, url_allow=("127.0.0.1/32",), url_timeout_s=1.5
    )
    with Engine.open(settings, create=True) as eng:
        yield eng


def test_a_trickled_image_is_a_failure_recorded_with_its_reason(
    engine: object,
    trickler: int,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    from faceindex.engine import Engine
    from faceindex.sources.urllist import clear_robots_cache

    assert isinstance(engine, Engine)
    clear_robots_cache()
    url = f"http://127.0.0.1:{trickler}/slow-body"
    listing = tmp_path / "web.txt"
    listing.write_text(url + "\n")
    engine.add_source("web", path=str(listing), owner="QA", legal_basis="consent", retention_days=1)
    assert engine.analyzer is not None  # load the models first: only the fetch is timed
    started = time.monotonic()
    summary = engine.ingest("web", in_process=True)
    took = time.monotonic() - started
    (failed,) = summary.failed
    assert failed[0] == url and "timed out after 1.5 s" in failed[1]
    assert took < 1.5 + 1.5  # one timeout (the trickle goes on for 8 s)
    (row,) = engine.catalog.failures()
    assert row[1] == url and "timed out" in row[2]


def test_a_url_list_naming_a_denied_host_in_any_spelling_is_refused(
    engine: object, tmp_path: Path
) -> None:
    from faceindex.engine import Engine

    assert isinstance(engine, Engine)
    listing = tmp_path / "social.txt"
    listing.write_text("https://example.org/ok.jpg\nhttps://m.\uff46\uff41cebook\u3002com/a.jpg\n")
    with pytest.raises(SourceRefused, match="facebook.com is on the deny-list"):
        engine.add_source(
            "social", path=str(listing), owner="QA", legal_basis="consent", retention_days=1
        )
