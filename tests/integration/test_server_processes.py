"""Several server processes over one engine home, one truth: two ``faceindex serve``
processes (and ``serve --workers 2``) on one home, the CLI writing beside them.

Whatever one process or the CLI writes (ingest, erasure), the other answers at once; an
erased face is never returned; a result link one process produced is answered by the other
(search records live in the governance database, not in a server's memory). Run over
SQLite + FAISS on this box and, where FACEINDEX_TEST_PG_URL is set, over a PostgreSQL
catalog and PostgreSQL governance state (FAISS index in the shared home).

Real ``faceindex serve`` (uvicorn) processes, real CLI processes, real models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import to_jpeg
from tests.live import free_port, unready

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Home:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        # PYTHONPATH passes on, so the children import the same faceindex as this test.
        # One engine slot (one analysis worker) per server process keeps N processes x
        # analysis workers small on a shared test box; a first probe loads the models.
        self.env = {
            **os.environ,
            "FACEINDEX_HOME": str(path),
            "FACEINDEX_WORKERS": "1",
            "FACEINDEX_SERVER_THREADS": "1",
            "FACEINDEX_REQUEST_TIMEOUT_S": "240",
            **env,
        }

    def cli(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "faceindex", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"faceindex {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc.stdout


class Server:
    def __init__(self, home: Home, token: str, *extra: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faceindex", "serve", "--port", str(port)]
            + ["--log-level", "warning", *extra],
            env=home.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        why = unready(self.proc, self.url, 90)
        if why is not None:
            self.stop()
            pytest.fail(why)

    def search(self, probe: bytes) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/v1/searches",
            headers=self.headers,
            files={"image": ("probe.jpg", probe, "image/jpeg")},
            data={"case_reference": "CASE-1", "purpose": "testing", "largest": "true"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def get(self, path: str) -> httpx.Response:
        # A fresh connection each time: with --workers the kernel may hand it to any process.
        with httpx.Client(headers=self.headers, timeout=30) as client:
            return client.get(f"{self.url}{path}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def matches(body: dict[str, Any]) -> list[dict[str, Any]]:
    (face,) = body["faces"]
    return [m for m in face["matches"] if m["decision"] == "match"]


def sources_of(body: dict[str, Any]) -> list[str]:
    return sorted(m["provenance"][0]["source"] for m in matches(body))


@pytest.fixture
def home(tmp_path: Path, astronaut: np.ndarray, shared: dict[str, str]) -> Home:
    """Two sources, each one photo of the same person (other bytes), nothing ingested."""
    img = Image.fromarray(astronaut)
    for name, variant in (
        ("first", img.resize((420, 420))),
        ("second", img.resize((380, 380)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.jpg").write_bytes(to_jpeg(np.asarray(variant)))
    home = Home(tmp_path / "home", shared)
    home.cli("init")
    for name in ("first", "second"):
        home.cli("sources", "add", name, "--path", str(tmp_path / name), "--owner", "desk",
                 "--legal-basis", "consent", "--retention-days", "30")  # fmt: skip
    token = home.cli("users", "add", "investigator-1", "--role", "investigator")
    (tmp_path / "token").write_text(_token(token))
    return home


def _token(cli_output: str) -> str:
    (token,) = (w for w in cli_output.split() if w.startswith("fi_"))
    return token


@pytest.fixture
def probe(astronaut: np.ndarray) -> bytes:
    return to_jpeg(np.asarray(Image.fromarray(astronaut).resize((300, 300))), quality=80)


def test_two_server_processes_one_truth(home: Home, probe: bytes, tmp_path: Path) -> None:
    token = (tmp_path / "token").read_text()
    one, two = Server(home, token), Server(home, token)
    try:
        assert sources_of(one.search(probe)) == [] == sources_of(two.search(probe))

        home.cli("ingest", "first")
        for server in (one, two):
            assert sources_of(server.search(probe)) == ["first"]
        home.cli("index", "build", "--kind", "flat")  # replaces the index files under both
        home.cli("ingest", "second")
        for server in (one, two):
            assert sources_of(server.search(probe)) == ["first", "second"]

        # A link one process made, the other answers (and keeps the owner rule).
        shown = one.search(probe)
        hit = next(m for m in matches(shown) if m["provenance"][0]["source"] == "first")
        thumb = two.get(hit["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
        other = home.cli("users", "add", "investigator-2", "--role", "investigator")
        stranger = httpx.get(
            f"{two.url}{hit['thumbnail_url']}",
            headers={"Authorization": f"Bearer {_token(other)}"},
            timeout=30,
        )
        assert stranger.status_code == 404

        # Erased through one process (a privacy officer's request): the other never
        # returns it.
        officer = _token(home.cli("users", "add", "po-1", "--role", "privacy-officer"))
        r = httpx.post(
            f"{one.url}/v1/erasures/images",
            headers={"Authorization": f"Bearer {officer}"},
            json={"ids": [hit["image_id"]], "reason": "request 1"},
            timeout=120,
        )
        assert r.status_code == 201, r.text
        for server in (two, one):
            left = server.search(probe)
            assert sources_of(left) == ["second"]
            assert hit["face_id"] not in {m["face_id"] for m in left["faces"][0]["matches"]}
        assert two.get(hit["thumbnail_url"]).status_code == 404  # the erased face's link
        # Two servers and the CLI appended to one chain: it verifies as one.
        assert "audit log intact" in home.cli("audit", "verify")
        if "FACEINDEX_GOVERNANCE_URL" in home.env:  # it all lives in PostgreSQL, no file
            assert not [p for p in ("audit.db", "governance.db", "accounts.db")
                        if (home.path / p).exists()]  # fmt: skip
    finally:
        one.stop()
        two.stop()


def test_serve_workers_answers_from_every_process(home: Home, probe: bytes, tmp_path: Path) -> None:
    token = (tmp_path / "token").read_text()
    home.cli("ingest", "first")
    server = Server(home, token, "--workers", "2")
    try:
        children = _children(server.proc.pid)
        assert len(children) >= 2, children  # uvicorn's supervisor and its two processes
        for _ in range(3):
            body = server.search(probe)
            assert sources_of(body) == ["first"]
            (hit,) = matches(body)
            for _ in range(6):  # new connections, spread over both processes
                assert server.get(hit["thumbnail_url"]).status_code == 200
        home.cli("erase", "image", str(hit["image_id"]), "--reason", "request 2")
        for _ in range(6):
            assert sources_of(server.search(probe)) == []
    finally:
        server.stop()
    assert server.proc.returncode is not None


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (read from /proc: no extra dependency)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out
