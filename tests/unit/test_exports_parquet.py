"""write_parquet: typed columns, nulls, one row group per ``row_group`` rows, atomic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faceindex.errors import InputError
from faceindex.governance.exports import SOURCE_COLUMNS, write_parquet

pq = pytest.importorskip("pyarrow.parquet", reason="Parquet exports need the parquet extra")
pytestmark = pytest.mark.unit


def rows(n: int) -> Iterator[dict[str, object]]:
    for i in range(n):
        yield {
            "face_id": i + 1,
            "image_id": i // 2,
            "box": "1 2 3 4",
            "quality": None if i % 3 else 0.5 + i,
            "image_sha256": f"{i:064x}",
            "source": "s",
            "item": f"dir/{i}.jpg",
            "ingested_at": "2026-01-01T00:00:00+00:00",
        }


def test_rows_are_written_in_row_groups_with_their_types(tmp_path: Path) -> None:
    n, sha = write_parquet(tmp_path / "x.parquet", SOURCE_COLUMNS, rows(25), row_group=10)
    assert n == 25 and len(sha) == 64
    f = pq.ParquetFile(tmp_path / "x.parquet")
    assert f.metadata.num_row_groups == 3 and f.metadata.num_rows == 25
    assert [f.metadata.row_group(i).num_rows for i in range(3)] == [10, 10, 5]
    table = f.read()
    assert table.column_names == SOURCE_COLUMNS
    assert str(table.schema.field("face_id").type) == "int64"
    assert table.column("quality").to_pylist()[:4] == [0.5, None, None, 3.5]
    assert not (tmp_path / "x.parquet.tmp").exists()


def test_an_empty_export_keeps_its_columns(tmp_path: Path) -> None:
    n, _ = write_parquet(tmp_path / "e.parquet", SOURCE_COLUMNS, iter(()))
    assert n == 0
    assert pq.read_table(tmp_path / "e.parquet").column_names == SOURCE_COLUMNS


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder"):
        write_parquet(tmp_path, SOURCE_COLUMNS, rows(1))
