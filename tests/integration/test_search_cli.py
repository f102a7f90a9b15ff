"""faceindex search as a user runs it: the one result schema, the bands, a per-search bound,
and a home pointed at its own calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.server.schemas import SearchOut
from faceindex.vision.calibration import default_calibration
from tests.conftest import to_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MODEL = "dlib-resnet-v1+mirror@1"


def run(home: Path, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--home", str(home)], env={"FACEINDEX_WORKERS": "1", **env}
    )
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path, astronaut: np.ndarray) -> Path:
    home, photos = tmp_path / "home", tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(to_jpeg(astronaut))
    assert run(home, "init")[0] == 0
    code, out = run(
        home, "sources", "add", "press", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0, out
    assert run(home, "ingest", "press")[0] == 0
    return home


def search(home: Path, probe: Path, *extra: str, **env: str) -> tuple[int, dict[str, object]]:
    code, out = run(
        home, "search", str(probe), "--case", "C-1", "--purpose", "check", "--json", *extra, **env
    )
    return code, json.loads(out)


def test_json_is_the_http_schema_with_bands_and_quality(
    home: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(to_jpeg(astronaut, quality=80))
    code, body = search(home, probe)
    assert code == 0
    SearchOut.model_validate(body)  # field for field, or this fails
    face = body["faces"][0]  # type: ignore[index]
    best = face["matches"][0]
    faces = json.loads(run(home, "stats", "--json")[1])["faces"]
    assert face["gallery_size"] == faces >= 1 and face["match_bound"] == 0.01
    assert best["decision"] == "match" and best["provenance"][0]["locator"] == "a.jpg"
    assert best["stranger_chance"] < 0.01 and 0 < best["quality"] <= 1
    code, table = run(home, "search", str(probe), "--case", "C-1", "--purpose", "check")
    assert code == 0 and "faces searched" in table and "match" in table
    assert "'match' needs fewer than 1 in 100 and both faces of good quality" in table
    # The same face with a bound no distance meets is no longer called a match: exit 1.
    code, strict = search(home, probe, "--match-bound", "1e-9")
    assert code == 1
    assert strict["faces"][0]["matches"][0]["decision"] != "match"  # type: ignore[index]


def test_a_home_follows_its_own_calibration(
    home: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    """A calibration claiming strangers are everywhere turns the same result into no match."""
    shipped = default_calibration(MODEL)
    paranoid = tmp_path / "paranoid.json"
    data = shipped.as_dict()
    data["fmr"] = [0.5] * len(shipped.distances)
    data["measured_on"] = "a test that calls everyone alike"
    paranoid.write_text(json.dumps(data))
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(to_jpeg(astronaut, quality=80))
    code, body = search(home, probe, FACEINDEX_CALIBRATION_PATH=str(paranoid))
    best = body["faces"][0]["matches"][0]  # type: ignore[index]
    assert code == 1 and best["decision"] == "no-match" and best["fmr"] == 0.5
