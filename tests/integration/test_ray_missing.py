"""Where Ray is not installed, `ingest --runner ray` says which extra to install (exit 2,
no traceback) and nothing is ingested; --address without the Ray runner is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.rayhelp import write_photos

pytestmark = pytest.mark.integration


def _cli(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceindex", *args],
        env={**os.environ, "FACEINDEX_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_ray_runner_without_ray_says_which_extra_to_install(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    # A `ray` package that fails to import, as an absent one does, first on the path.
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": path}
    home = tmp_path / "home"
    photos = write_photos(tmp_path / "photos", astronaut, 2)
    assert _cli(home, "init", env=env).returncode == 0
    add = ["sources", "add", "p", "--path", str(photos), "--owner", "qa"]
    add += ["--legal-basis", "consent", "--retention-days", "1"]
    assert _cli(home, *add, env=env).returncode == 0

    got = _cli(home, "ingest", "p", "--runner", "ray", env=env)
    assert got.returncode == 2, got.stderr
    assert "pip install 'faceindex[ray]'" in " ".join(got.stderr.split())  # rich wraps lines
    assert "Traceback" not in got.stderr + got.stdout

    got = _cli(home, "ingest", "p", "--address", "auto", env=env)
    assert got.returncode == 2 and "--runner ray" in got.stderr, got.stderr
    stats = json.loads(_cli(home, "stats", "--json", env=env).stdout)
    assert stats["images"] == 0
