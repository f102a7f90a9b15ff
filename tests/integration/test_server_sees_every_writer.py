"""A running server and the CLI in other processes, on one engine home: whatever the CLI
writes (ingest, index build and compaction, erasure, opt-out), the next HTTP request sees,
with no restart; an erased face is never returned; /v1/health counts what the catalog holds.

A real ``faceindex serve`` (uvicorn) process and real CLI processes, real models."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import to_jpeg
from tests.live import free_port, unready

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env(home: Path) -> dict[str, str]:
    # PYTHONPATH passes on, so the child imports the same faceindex as this test.
    return {**os.environ, "FACEINDEX_HOME": str(home), "FACEINDEX_WORKERS": "1"}


def cli(home: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "faceindex", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"faceindex {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc.stdout


def catalog_faces(home: Path) -> int:
    db = sqlite3.connect(f"file:{home / 'catalog.db'}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
    finally:
        db.close()


def sources_of(hits: list[dict[str, Any]]) -> list[str]:
    """The sources of the hits that are the probe's person."""
    return sorted(h["provenance"][0]["source"] for h in hits if h["decision"] == "match")


class Server:
    def __init__(self, home: Path, token: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faceindex", "serve", "--port", str(port)]
            + ["--log-level", "warning"],
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        why = unready(self.proc, self.url, 60)
        if why is not None:
            self.stop()
            pytest.fail(why)

    def health(self) -> int:
        r = httpx.get(f"{self.url}/v1/health", timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["faces"])

    def search(self, probe: bytes) -> list[dict[str, Any]]:
        r = httpx.post(
            f"{self.url}/v1/searches",
            headers=self.headers,
            files={"image": ("probe.jpg", probe, "image/jpeg")},
            data={"case_reference": "CASE-1", "purpose": "testing", "largest": "true"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        faces = r.json()["faces"]
        assert len(faces) == 1
        return list(faces[0]["matches"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def home(tmp_path: Path, astronaut: np.ndarray) -> Path:
    """Two sources, each one photo of the same person (other bytes), nothing ingested yet."""
    img = Image.fromarray(astronaut)
    for name, variant in (
        ("first", img.resize((420, 420))),
        ("second", img.resize((380, 380)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.jpg").write_bytes(to_jpeg(np.asarray(variant)))
    home = tmp_path / "home"
    cli(home, "init")
    for name in ("first", "second"):
        cli(home, "sources", "add", name, "--path", str(tmp_path / name), "--owner", "desk",
            "--legal-basis", "consent", "--retention-days", "30")  # fmt: skip
    from faceindex.server.accounts import AccountStore

    store = AccountStore.for_home(home)
    (home / "token").write_text(store.add("investigator-1", "investigator"))
    store.close()
    return home


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    srv = Server(home, (home / "token").read_text())
    yield srv
    srv.stop()


def test_the_server_sees_what_other_processes_write(
    home: Path, server: Server, astronaut: np.ndarray, tmp_path: Path, analyzer: Any
) -> None:
    probe = to_jpeg(np.asarray(Image.fromarray(astronaut).resize((300, 300))), quality=80)
    assert server.health() == 0
    assert server.search(probe) == []

    cli(home, "ingest", "first")  # another process, while the server runs
    assert server.health() == catalog_faces(home) >= 1
    hits = server.search(probe)
    assert sources_of(hits) == ["first"]
    (hit,) = (h for h in hits if h["decision"] == "match")

    cli(home, "index", "build", "--kind", "flat")  # replaces the index files
    cli(home, "ingest", "second")
    assert server.health() == catalog_faces(home) > 1
    assert sources_of(server.search(probe)) == ["first", "second"]
    cli(home, "index", "compact")

    cli(home, "erase", "image", str(hit["image_id"]), "--reason", "request 1")
    left = server.search(probe)
    assert sources_of(left) == ["second"]
    assert hit["face_id"] not in {h["face_id"] for h in left}
    assert server.health() == catalog_faces(home)

    # A suppression another process registers is honoured at once, before any sweep.
    from faceindex.governance.store import GovernanceStore
    from faceindex.vision.decode import decode_image
    from faceindex.vision.pack import DLIB_PACK

    faces = analyzer.analyze(decode_image(probe, max_pixels=10**7, max_bytes=10**7))
    template = max(faces, key=lambda f: f.bbox.area).embedding
    store = GovernanceStore(home / "governance.db", dim=DLIB_PACK.dim)
    store.add_suppression(np.asarray(template)[None, :], actor="privacy", reference="OPT-0")
    store.close()
    held = catalog_faces(home)
    assert sources_of(server.search(probe)) == []
    assert catalog_faces(home) == held  # withheld, not yet erased

    (tmp_path / "me.jpg").write_bytes(probe)
    cli(home, "optout", "add", str(tmp_path / "me.jpg"), "--reference", "OPT-1")
    assert sources_of(server.search(probe)) == []
    assert server.health() == catalog_faces(home)
