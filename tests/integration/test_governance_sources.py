"""Archive and URL-list sources end to end: register, ingest with the real models, erase.

The URL list is served by a real HTTP server on 127.0.0.1, which the engine reaches only
because the test's settings allow that one address.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import SourceRefused
from faceindex.governance.service import Governance
from faceindex.sources.urllist import clear_robots_cache
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, astronaut: np.ndarray) -> Iterator[str]:
    root = tmp_path / "www"
    (root / "pics").mkdir(parents=True)
    (root / "pics" / "astronaut.jpg").write_bytes(to_jpeg(astronaut))
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    clear_robots_cache()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_list_source_ingests_listed_images_and_records_provenance(
    served: str, tmp_path: Path
) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{served}/pics/astronaut.jpg\n{served}/private/x.jpg\n")
    settings = Settings.load(tmp_path / "home", workers=1, url_allow=("127.0.0.1/32",))
    with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
        rec = gov.add_source(
            "web", path=str(listing), owner="press office", legal_basis="consent",
            retention_days=30, legal_reference="release forms 2024",
        )  # fmt: skip
        assert rec.kind == "urls"
        summary = gov.ingest("web", in_process=True)
        assert summary.images_new == 1 and summary.faces_indexed >= 1
        assert [r for _, r in summary.failed if "robots.txt" in r]
        prov = [json.loads(x) for x in (settings.home / "provenance" / "web.jsonl").open()]
        assert prov[0]["status"] == 200 and prov[0]["url"].endswith("/astronaut.jpg")
        receipt = gov.erase_source("web")
        assert receipt.faces_deleted == summary.faces_indexed
        assert not (settings.home / "provenance" / "web.jsonl").exists()


def test_without_the_allow_setting_the_local_server_is_refused(served: str, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{served}/pics/astronaut.jpg\n")
    settings = Settings.load(tmp_path / "home", workers=1)
    with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
        gov.add_source("web", path=str(listing), owner="o", legal_basis="consent", retention_days=1)
        summary = gov.ingest("web", in_process=True)
    assert summary.faces_indexed == 0
    assert "SourceRefused" in summary.failed[0][1] and "non-public" in summary.failed[0][1]


def test_archive_source_ingests_in_place_and_refuses_traversal(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("press/astronaut.jpg", to_jpeg(astronaut))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../astronaut.jpg", to_jpeg(astronaut))
    settings = Settings.load(tmp_path / "home", workers=1)
    with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
        assert (
            gov.add_source(
                "zip", path=str(good), owner="o", legal_basis="contract", retention_days=9
            ).kind
            == "archive"
        )
        assert gov.ingest("zip", in_process=True).faces_indexed >= 1
        with pytest.raises(SourceRefused):
            gov.add_source(
                "bad", path=str(bad), owner="o", legal_basis="contract", retention_days=9
            )
        assert [s.name for s in eng.catalog.list_sources()] == ["zip"]
