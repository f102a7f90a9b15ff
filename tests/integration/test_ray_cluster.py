"""Ingest on a real two-node Ray cluster (``ray start --head`` plus a second node, on this
machine) into PostgreSQL + milvus-lite, through the CLI as a user runs it: the same faces
as the local runner; a Ray worker killed mid-run loses nothing; a driver killed mid-run,
then rerun, adds no duplicate; two server processes started before the job answer its
faces at once (over a shared index: a real Milvus server or FAISS in the home).

Needs Ray (``pip install 'faceindex[ray]'``), FACEINDEX_TEST_PG_URL (``bash
scripts/start-postgres.sh`` prints one) and milvus-lite; skipped with the reason otherwise.
Slow: a cluster start and a model load per actor (~1-3 min on 2 busy cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.backends import open_catalog
from faceindex.catalog.base import Catalog
from tests.raycluster import RayCluster, start_cluster
from tests.rayhelp import FaceKey, assert_same_faces, faces_by_item, needs_ray, write_photos

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_PHOTOS = 12
PG_ENV = "FACEINDEX_TEST_PG_URL"


SCHEMAS: list[str] = []  # made by this module's homes, dropped after it


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"needs {PG_ENV} (bash scripts/start-postgres.sh prints one)")
    psycopg = pytest.importorskip(
        "psycopg", reason="needs psycopg: pip install 'faceindex[postgres]'"
    )
    pytest.importorskip("milvus_lite", reason="needs milvus-lite: pip install 'faceindex[milvus]'")
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def cluster(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    needs_ray()
    yield from start_cluster(tmp_path_factory.mktemp("ray-cluster"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    return write_photos(tmp_path_factory.mktemp("ray-photos") / "p", astronaut, N_PHOTOS)


class Home:
    """An engine home whose catalog is a fresh PostgreSQL schema and index a milvus-lite
    file (or SQLite + FAISS with ``pg_url`` empty), driven through the CLI."""

    def __init__(self, root: Path, pg_url: str, env: dict[str, str]) -> None:
        self.root = root
        self.env = {**env, "FACEINDEX_HOME": str(root), "FACEINDEX_BATCH_SIZE": "2"}
        self.catalog_url = f"sqlite:///{root / 'catalog.db'}"
        if pg_url:
            sep = "&" if "?" in pg_url else "?"
            self.schema = f"t_{uuid.uuid4().hex[:16]}"
            SCHEMAS.append(self.schema)
            self.catalog_url = f"{pg_url}{sep}schema={self.schema}"
            self.env["FACEINDEX_CATALOG_URL"] = self.catalog_url
            self.env["FACEINDEX_INDEX_URL"] = f"milvus-lite:///{root / 'faces.db'}"

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "faceindex", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the driver and its milvus-lite server, killed together
        )

    def run(self, *args: str) -> str:
        proc = self.start(*args)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"faceindex {' '.join(args)}: {err.decode()[-3000:]}"
        return out.decode()

    def add_source(self, photos: Path) -> None:
        self.run("init")
        self.run(
            *("sources", "add", "p", "--path", str(photos), "--owner", "qa"),
            *("--legal-basis", "consent", "--retention-days", "1"),
        )

    def catalog(self) -> Catalog:
        return open_catalog(self.catalog_url)

    def items(self) -> int:
        cat = self.catalog()
        try:
            return int(cat.stats().get("images", 0)) + len(cat.failures())
        finally:
            cat.close()

    def faces(self) -> dict[FaceKey, np.ndarray]:
        cat = self.catalog()
        try:
            assert not cat.failures(), cat.failures()
            return faces_by_item(cat)
        finally:
            cat.close()

    def stats(self) -> dict[str, int]:
        return json.loads(self.run("stats", "--json"))


def _ray_ingest(home: Home, cluster: RayCluster) -> subprocess.Popen[bytes]:
    return home.start("ingest", "p", "--runner", "ray", "--address", cluster.address, "--json")


def _wait_items(home: Home, proc: subprocess.Popen[bytes], at_least: int) -> None:
    deadline = time.monotonic() + 300
    while home.items() < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the ingest finished before it could be interrupted"


@pytest.fixture(scope="module")
def local_faces(
    photos: Path, cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> dict[FaceKey, np.ndarray]:
    """What the local runner gives (worker processes, SQLite + FAISS)."""
    home = Home(tmp_path_factory.mktemp("local") / "home", "", cluster.env)
    home.add_source(photos)
    home.run("ingest", "p", "--workers", "2")
    faces = home.faces()
    assert len(faces) >= N_PHOTOS
    return faces


def test_a_ray_cluster_ingest_gives_the_local_runners_faces(
    cluster: RayCluster, pg_url: str, photos: Path, tmp_path: Path, local_faces: dict
) -> None:
    home = Home(tmp_path / "home", pg_url, cluster.env)
    home.add_source(photos)
    proc = _ray_ingest(home, cluster)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    summary = json.loads(out)
    assert summary["images_new"] == N_PHOTOS and summary["faces_indexed"] == len(local_faces)
    assert_same_faces(home.faces(), local_faces)
    stats = home.stats()
    assert stats["index_vectors"] == stats["faces"] == len(local_faces)


def test_a_killed_ray_worker_loses_nothing(
    cluster: RayCluster, pg_url: str, photos: Path, tmp_path: Path, local_faces: dict
) -> None:
    home = Home(tmp_path / "home", pg_url, cluster.env)
    home.add_source(photos)
    proc = _ray_ingest(home, cluster)
    _wait_items(home, proc, 2)
    victims = cluster.analyst_pids()
    assert victims, "no ingest actor process found"
    os.kill(victims[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.startswith(b"{"), (out[:3000], err[-3000:])
    assert json.loads(out)["images_new"] == N_PHOTOS  # its batch was run again
    assert_same_faces(home.faces(), local_faces)  # no failure recorded, no face twice
    stats = home.stats()
    assert stats["index_vectors"] == stats["faces"] == len(local_faces)


def test_a_killed_driver_then_a_rerun_adds_no_duplicate(
    cluster: RayCluster, pg_url: str, photos: Path, tmp_path: Path, local_faces: dict
) -> None:
    home = Home(tmp_path / "home", pg_url, cluster.env)
    home.add_source(photos)
    proc = _ray_ingest(home, cluster)
    _wait_items(home, proc, 3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver (and its milvus-lite server)
    proc.wait(timeout=30)
    killed_at = home.items()
    assert killed_at < N_PHOTOS
    rerun = _ray_ingest(home, cluster)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-3000:]
    summary = json.loads(out)
    assert summary["images_skipped"] >= killed_at  # what was committed is not read again
    assert_same_faces(home.faces(), local_faces)
    stats = home.stats()
    assert stats["index_vectors"] == stats["faces"] == len(local_faces)


def test_two_server_processes_see_a_ray_ingest_at_once(
    cluster: RayCluster, pg_url: str, photos: Path, tmp_path: Path, local_faces: dict
) -> None:
    # Two `faceindex serve` processes over the home, started before the Ray job: what the
    # job commits (PostgreSQL catalog; the index two processes can share: a real Milvus
    # server where FACEINDEX_TEST_MILVUS_URI names one, else FAISS in the home, which each
    # process follows from the catalog) both answer without a restart. milvus-lite is one
    # process's file ("Open local milvus failed" for a second), so it cannot be shared.
    from tests.integration.test_server_processes import Server

    home = Home(tmp_path / "home", pg_url, cluster.env)
    server_uri = os.environ.get("FACEINDEX_TEST_MILVUS_URI", "")
    if server_uri:
        collection = f"ray_{uuid.uuid4().hex[:12]}"
        home.env["FACEINDEX_INDEX_URL"] = f"{server_uri.rsplit('/', 1)[0]}/{collection}"
    else:
        del home.env["FACEINDEX_INDEX_URL"]
    home.env["FACEINDEX_GOVERNANCE_URL"] = home.catalog_url
    home.env["FACEINDEX_SERVER_THREADS"] = "1"
    home.add_source(photos)
    token = next(w for w in home.run("users", "add", "inv-1", "--role", "investigator").split()
                 if w.startswith("fi_"))  # fmt: skip
    probe = (photos / "img05.jpg").read_bytes()
    servers = [Server(home, token) for _ in range(2)]  # type: ignore[arg-type]
    try:
        assert [_locators(s.search(probe)) for s in servers] == [set(), set()]
        proc = _ray_ingest(home, cluster)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert json.loads(out)["faces_indexed"] == len(local_faces)
        every = {p.name for p in photos.iterdir()}
        assert [_locators(s.search(probe)) for s in servers] == [every, every]
    finally:
        for s in servers:
            s.stop()


def _locators(body: dict) -> set[str]:
    """Every location of every match of the probe's face (a photo group lists them all)."""
    return {
        loc["locator"]
        for face in body["faces"]
        for m in face["matches"]
        if m["decision"] == "match"
        for loc in m["provenance"]
    }
