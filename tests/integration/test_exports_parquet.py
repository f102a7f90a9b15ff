"""Parquet exports beside CSV ones, on the real models and photos: the same rows, registered
the same way, and named by a later erasure of the source."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import InputError
from faceindex.governance.service import Governance

pq = pytest.importorskip("pyarrow.parquet", reason="Parquet exports need the parquet extra")
pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]


@pytest.fixture
def home(shared_faces: Path, tmp_path: Path) -> Path:
    """An engine home with face-recognition-knn's five people (12 faces) ingested."""
    home = tmp_path / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as g,
    ):
        knn = shared_faces / "face-recognition-knn"
        g.add_source("knn", path=str(knn), owner="tests", legal_basis="consent", retention_days=365)
        assert g.ingest("knn", in_process=True).faces_indexed == 12
    return home


@pytest.fixture
def gov(home: Path) -> Iterator[Governance]:
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as g:
        yield g


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def parquet_rows(path: Path) -> list[dict[str, str]]:
    """Parquet's typed values as the CSV writer spells them (None as an empty field)."""
    return [
        {k: "" if v is None else str(v) for k, v in row.items()}
        for row in pq.read_table(path).to_pylist()
    ]


def test_source_export_parquet_matches_csv_is_registered_and_named_by_erasure(
    gov: Governance, tmp_path: Path
) -> None:
    as_csv = gov.export_source("knn", tmp_path / "knn.csv", case="C-1", purpose="audit")
    as_pq = gov.export_source(
        "knn", tmp_path / "knn.parquet", case="C-1", purpose="audit", fmt="parquet"
    )
    assert as_csv.rows == as_pq.rows == 12
    assert parquet_rows(tmp_path / "knn.parquet") == csv_rows(tmp_path / "knn.csv")
    assert pq.read_schema(tmp_path / "knn.parquet").field("face_id").type == "int64"
    assert {e.path for e in gov.exports("knn")} == {as_csv.path, as_pq.path}
    receipt = gov.erase_source("knn", reason="contract ended")
    assert set(receipt.exports) == {as_csv.path, as_pq.path}


def test_results_export_parquet_matches_csv(
    gov: Governance, shared_faces: Path, tmp_path: Path
) -> None:
    probe = (shared_faces / "face-recognition-knn" / "biden" / "biden.jpg").read_bytes()
    results = gov.search(probe, case="C-2", purpose="testing")
    a = gov.export_results(results, tmp_path / "r.csv", case="C-2", purpose="testing")
    b = gov.export_results(
        results, tmp_path / "r.parquet", case="C-2", purpose="testing", fmt="parquet"
    )
    assert a.rows == b.rows > 0
    assert parquet_rows(tmp_path / "r.parquet") == csv_rows(tmp_path / "r.csv")
    assert {e.path for e in gov.exports("knn")} == {a.path, b.path}
    with pytest.raises(InputError, match="format"):
        gov.export_results(results, tmp_path / "r.xlsx", case="C-2", purpose="t", fmt="xlsx")
    assert not (tmp_path / "r.xlsx").exists()


def test_cli_export_source_format_parquet(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.parquet"
    args = ["export", "source", "knn", "--out", str(out), "--format", "parquet"]
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 12
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as g:
        assert [e.path for e in g.exports("knn")] == [str(out.resolve())]
