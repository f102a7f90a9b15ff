"""SIGKILL the ingest process at several points; rerunning it must give exactly the face
count of an uninterrupted run: nothing acknowledged is lost, nothing is duplicated. And
SIGKILL an erasure right after its catalog commit: the rerun must yield its receipt."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration

N_IMAGES = 14


def _cli(
    home: Path, *args: str, extra_env: dict[str, str] | None = None, **kw: object
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FACEINDEX_HOME": str(home),
        "FACEINDEX_WORKERS": "2",
        "FACEINDEX_BATCH_SIZE": "2",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "faceindex", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )  # type: ignore[call-overload]


def _run(home: Path, *args: str) -> str:
    proc = _cli(home, *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("crash-photos")
    img = Image.fromarray(astronaut)
    for i in range(N_IMAGES):
        side = 260 + 12 * i  # distinct bytes, one face each, different sizes
        variant = img.resize((side, side))
        if i % 2:
            variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (folder / f"img{i:02d}.jpg").write_bytes(to_jpeg(np.asarray(variant)))
    return folder


def _fresh_home(tmp: Path, photos: Path) -> Path:
    home = tmp / "home"
    _run(home, "init")
    _run(
        home,
        "sources",
        "add",
        "photos",
        "--path",
        str(photos),
        "--owner",
        "desk",
        "--legal-basis",
        "contract",
        "--retention-days",
        "30",
    )
    return home


def _stats(home: Path) -> dict[str, int]:
    return json.loads(_run(home, "stats", "--json"))


def _count(home: Path, table: str, db_name: str = "catalog.db") -> int:
    try:
        db = sqlite3.connect(f"file:{home / db_name}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _items(home: Path) -> int:
    return _count(home, "items")


@pytest.fixture(scope="module")
def uninterrupted(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    home = _fresh_home(tmp_path_factory.mktemp("clean"), photos)
    _run(home, "ingest", "photos")
    stats = _stats(home)
    assert stats["images"] == N_IMAGES and stats["faces"] >= N_IMAGES
    return stats


@pytest.mark.parametrize("kill_after_items", [0, 3, 7, 10])
def test_sigkill_then_rerun_gives_the_same_faces(
    kill_after_items: int, photos: Path, tmp_path: Path, uninterrupted: dict[str, int]
) -> None:
    home = _fresh_home(tmp_path, photos)
    proc = _cli(home, "ingest", "photos", start_new_session=True)
    deadline = time.monotonic() + 120
    while _items(home) < kill_after_items and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if kill_after_items == 0:
        time.sleep(0.5)  # mid start-up: workers spawning, models loading
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker processes
    proc.wait(timeout=30)
    killed_at = _items(home)
    assert killed_at < N_IMAGES, "the ingest finished before it could be killed"
    _run(home, "ingest", "photos")
    stats = _stats(home)
    assert stats["faces"] == uninterrupted["faces"], f"killed after {killed_at} items"
    assert stats["images"] == uninterrupted["images"]
    assert stats["index_vectors"] == stats["faces"]


def test_sigkill_right_after_the_erasure_commit_then_the_rerun_yields_the_receipt(
    photos: Path, tmp_path: Path, uninterrupted: dict[str, int]
) -> None:
    home = _fresh_home(tmp_path, photos)
    _run(home, "ingest", "photos")
    hook = {"FACEINDEX_TEST_KILL_AT": "erasure-committed"}  # test hook: SIGKILLs itself there
    proc = _cli(home, "erase", "source", "photos", extra_env=hook)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    # Killed after the commit: the source is gone, and the dead process issued no receipt.
    assert _count(home, "sources") == 0 and _count(home, "receipts", "governance.db") == 0
    receipt = json.loads(_run(home, "erase", "source", "photos", "--json"))
    assert receipt["recovered"] and receipt["kind"] == "source"
    assert receipt["faces_deleted"] == uninterrupted["faces"]
    assert receipt["images_deleted"] == uninterrupted["images"]
    assert "verified" in _run(home, "erase", "verify", receipt["id"])
    stats = _stats(home)
    assert stats["faces"] == 0 and stats["index_vectors"] == 0
    assert "intact" in _run(home, "audit", "verify")
