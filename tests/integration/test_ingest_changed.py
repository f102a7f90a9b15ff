"""A file replaced in place (same path, new bytes): its location moves to the new image, and
the ingest that replaced it retires the old image with a receipt (``gc`` has nothing left)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


def cli(home: Path, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "FACEINDEX_HOME": str(home), "FACEINDEX_WORKERS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "faceindex", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        return proc.returncode, proc.stdout + proc.stderr


def test_a_file_changed_in_place_moves_its_location_and_its_ingest_retires_the_old_image(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    home, photos = tmp_path / "home", tmp_path / "photos"
    photos.mkdir()
    photo = photos / "a.jpg"
    photo.write_bytes(to_jpeg(astronaut))
    assert cli(home, "init")[0] == 0
    code, _ = cli(
        home, "sources", "add", "press", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0
    assert cli(home, "ingest", "press", "--json")[0] == 0
    before = cli(home, "stats", "--json")[1]
    assert before["images"] == 1 and before["faces"] >= 1

    photo.write_bytes(to_jpeg(np.ascontiguousarray(astronaut[:, ::-1])))  # new bytes
    stamp = photo.stat().st_mtime + 10
    os.utime(photo, (stamp, stamp))
    code, summary = cli(home, "ingest", "press", "--json")
    assert code == 0 and summary["images_new"] == 1
    # Before: the old image stayed held with no location at all until gc, faces searchable.
    assert summary["images_retired"] == 1 and summary["images_unheld"] == 0
    after = cli(home, "stats", "--json")[1]
    assert after["images"] == 1 and after["images_unheld"] == 0 and after["locations"] == 1
    assert after["faces"] == after["index_vectors"]
    code, out = cli(home, "erase", "verify", summary["retired_receipt"])
    assert code == 0, out

    code, report = cli(home, "gc", "--json")
    assert code == 0
    assert report["unheld_images_deleted"] == 0 and report["receipt_id"] is None
