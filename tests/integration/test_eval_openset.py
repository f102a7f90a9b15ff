"""faceindex eval open-set and --calibrate on real labelled photos (../shared/faces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.vision.calibration import load_calibration

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces, pytest.mark.slow]


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    return result.exit_code, result.output


def test_open_set_reports_every_gallery_size(shared_faces: Path, tmp_path: Path) -> None:
    code, out = run(
        tmp_path / "home", "eval", "open-set", str(shared_faces / "yale-faces"),
        "--distractors", str(shared_faces / "face-recognition-knn"),
        "--nonmated", "5", "--steps", "2", "--json",
    )  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    sizes = body["sizes"]
    assert [s["distractors"] for s in sizes] == [0, 6, 12]  # knn's 12 photos, one face each
    assert all(s["gallery"] == 10 + s["distractors"] for s in sizes)  # 15 people, 5 held out
    assert all(s["mated"] + s["nonmated"] + 10 == 164 for s in sizes)  # yale's photos
    # 55 strangers resolve FPIR in steps of 1.8%: at a true rate of 1% three or more false
    # matches happen 2% of the time (binomial); the pooled all-pairs table gave 3 here.
    assert all(round(s["match_fpir"] * s["nonmated"]) <= 2 for s in sizes)
    assert sizes[0]["rank1"] >= 0.95 and "distance" in sizes[0]["fnir_at_fpir"]


def test_calibrate_writes_a_calibration_a_home_can_load(shared_faces: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "yale.calibration.json"
    code, out = run(
        tmp_path / "home", "eval", "folder", str(shared_faces / "yale-faces"),
        "--calibrate", str(out_file),
    )  # fmt: skip
    assert code == 0, out
    cal = load_calibration(out_file)
    assert cal.model == "dlib-resnet-v1+mirror@1" and cal.identities == 15
    assert cal.genuine_pairs == 14 * 55 + 45  # 14 subjects of 11 photos, one of 10
    assert cal.fmr_at(0.3) < cal.fmr_at(0.5) < cal.fmr_at(0.7)
