"""CSV or Parquet exports of search results or of a source. Never embeddings, never
thumbnails.

Every export is registered (path, rows, sha256, sources, case, purpose), so erasing a
source can list where copies of its data went, whatever the format. :class:`Exports` is the
audited collaborator of the Governance facade that makes them. Both formats are streamed: a
source's faces are read from the catalog in batches and Parquet is written one row group at
a time, so an export of millions of faces never holds its table in memory. Parquet needs
pyarrow (the ``parquet`` extra).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from faceindex.catalog.base import Catalog
from faceindex.engine import Engine
from faceindex.errors import InputError, MissingDependency, NotFoundError
from faceindex.governance.acting import Acting
from faceindex.governance.base import ExportRecord
from faceindex.governance.roles import Permission
from faceindex.governance.store import GovernanceStore, _now, new_id
from faceindex.types import SearchResult

__all__ = [
    "FORMATS",
    "Exports",
    "iter_source_rows",
    "result_rows",
    "source_rows",
    "write_csv",
    "write_parquet",
]

P = Permission

RESULT_COLUMNS = [
    "probe_face", "rank", "face_id", "image_id", "distance", "stranger_chance", "decision",
    "box", "quality", "image_sha256", "source", "item", "ingested_at",
    "photo_group", "item_image_id",
]  # fmt: skip
SOURCE_COLUMNS = [
    "face_id", "image_id", "box", "quality", "image_sha256", "source", "item", "ingested_at",
    "photo_group",
]  # fmt: skip
# Parquet column types (CSV has none); distance, stranger_chance and quality may be null
INT_COLUMNS = {"probe_face", "rank", "face_id", "image_id", "photo_group", "item_image_id"}
FLOAT_COLUMNS = {"distance", "stranger_chance", "quality"}
FORMATS = ("csv", "parquet")
FACE_BATCH = 10_000  # faces read from the catalog at once for a source export
ROW_GROUP = 65_536  # Parquet rows written together


def result_rows(results: Sequence[SearchResult]) -> tuple[list[dict[str, object]], set[str]]:
    rows, sources = [], set()
    for n, r in enumerate(results, 1):
        for rank, m in enumerate(r.matches, 1):
            for loc in m.locations or ():
                sources.add(loc.source)
                rows.append(
                    {
                        "probe_face": n,
                        "rank": rank,
                        "face_id": m.face_id,
                        "image_id": m.image_id,
                        "distance": m.distance,
                        "stranger_chance": m.stranger_chance,
                        "decision": m.decision,
                        "box": " ".join(str(v) for v in m.bbox.as_list()),
                        "quality": m.quality,
                        "image_sha256": m.image_sha256,
                        "source": loc.source,
                        "item": loc.locator,
                        "ingested_at": loc.ingested_at,
                        # a photo group's row lists the locations of all its images
                        "photo_group": m.group_id,
                        "item_image_id": loc.image_id or m.image_id,
                    }
                )
    return rows, sources


def source_rows(catalog: Catalog, source: str) -> list[dict[str, object]]:
    return list(iter_source_rows(catalog, source))


def iter_source_rows(
    catalog: Catalog, source: str, batch: int = FACE_BATCH
) -> Iterator[dict[str, object]]:
    """A source's rows in face id order, reading ``batch`` faces from the catalog at once."""
    rec = catalog.get_source(source)
    images = catalog.image_ids_of_source(rec.id)
    face_ids = sorted(catalog.face_ids_of_images(images))
    groups = catalog.image_groups(images)
    for start in range(0, len(face_ids), batch):
        yield from _face_rows(catalog, face_ids[start : start + batch], source, groups)


def _face_rows(
    catalog: Catalog, face_ids: list[int], source: str, groups: dict[int, int]
) -> Iterator[dict[str, object]]:
    for fid, face in sorted(catalog.faces(face_ids).items()):
        for loc in face.locations:
            if loc.source != source:
                continue
            yield (
                {
                    "face_id": fid,
                    "image_id": face.image_id,
                    "box": " ".join(str(v) for v in face.bbox.as_list()),
                    "quality": face.quality,
                    "image_sha256": face.image_sha256,
                    "source": loc.source,
                    "item": loc.locator,
                    "ingested_at": loc.ingested_at,
                    "photo_group": groups.get(face.image_id),
                }
            )


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, object]]) -> tuple[int, str]:
    """Write atomically (temp file, fsync, rename); returns (rows, sha256 of the file)."""
    path = _target(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write export {path}: {exc.strerror or exc}") from exc
    return n, _sha256(path)


def write_parquet(
    path: Path, columns: list[str], rows: Iterable[dict[str, object]], row_group: int = ROW_GROUP
) -> tuple[int, str]:
    """Parquet, written atomically one row group of ``row_group`` rows at a time (never the
    whole table in memory); returns (rows, sha256 of the file)."""
    pa, pq = _pyarrow()
    path = _target(path)
    tmp = path.with_name(path.name + ".tmp")
    schema = pa.schema([(c, _arrow_type(pa, c)) for c in columns])
    n = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            group: list[dict[str, object]] = []
            for row in rows:
                group.append(row)
                if len(group) == row_group:
                    writer.write_table(pa.Table.from_pylist(group, schema=schema))
                    n, group = n + len(group), []
            if group or not n:  # an empty export still has its columns
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                n += len(group)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write export {path}: {exc.strerror or exc}") from exc
    return n, _sha256(path)


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependency(
            "Parquet exports need pyarrow: pip install 'faceindex[parquet]'"
        ) from exc
    return pa, pq


def _arrow_type(pa: Any, column: str) -> Any:
    if column in INT_COLUMNS:
        return pa.int64()
    return pa.float64() if column in FLOAT_COLUMNS else pa.string()


def _target(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name for the export")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Exports:
    def __init__(self, engine: Engine, store: GovernanceStore, acting: Acting) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting

    def export_results(
        self,
        results: Sequence[SearchResult],
        path: Path | str,
        *,
        case: str,
        purpose: str,
        fmt: str = "csv",
    ) -> ExportRecord:
        _check_format(fmt)
        self.acting.require(P.EXPORT, action="export", case=case, purpose=purpose)
        rows, sources = result_rows(results)
        return self._export(
            "results", Path(path), RESULT_COLUMNS, rows, sources, case, purpose, fmt
        )

    def export_source(
        self, name: str, path: Path | str, *, case: str = "", purpose: str = "", fmt: str = "csv"
    ) -> ExportRecord:
        _check_format(fmt)
        self.acting.require(P.EXPORT, action="export", sources=(name,), case=case, purpose=purpose)
        rows = iter_source_rows(self.engine.catalog, name)
        return self._export("source", Path(path), SOURCE_COLUMNS, rows, {name}, case, purpose, fmt)

    def _export(
        self,
        kind: str,
        path: Path,
        columns: list[str],
        rows: Iterable[dict[str, object]],
        sources: set[str],
        case: str,
        purpose: str,
        fmt: str,
    ) -> ExportRecord:
        face_ids: set[int] = set()

        def noted(rows: Iterable[dict[str, object]]) -> Iterator[dict[str, object]]:
            for row in rows:
                face_ids.add(int(str(row["face_id"])))
                yield row

        write = write_parquet if fmt == "parquet" else write_csv
        n, sha = write(path, columns, noted(rows))
        record = ExportRecord(
            new_id("exp"),
            _now(),
            self.acting.actor.name,
            kind,
            str(path.expanduser().resolve()),
            n,
            sha,
            tuple(sorted(sources)),
            case,
            purpose,
        )
        self.store.add_export(record)
        self.acting.record(
            "export",
            case=case,
            purpose=purpose,
            sources=record.sources,
            face_ids=tuple(sorted(face_ids)),
            details={
                "export": record.id,
                "kind": kind,
                "format": fmt,
                "path": record.path,
                "sha256": sha,
            },
        )
        return record

    def exports(self, source: str | None = None) -> list[ExportRecord]:
        self.acting.require(P.EXPORT, P.READ_AUDIT, action="export")
        return self.store.exports(source)

    # -- privacy: exports made and fetched over HTTP --------------------------------------

    def served_path(self) -> Path:
        """Where exports made over HTTP are written: the home's ``exports`` folder (a caller
        never names a server path); only files there are served back."""
        return self.engine.settings.home / "exports" / f"{new_id('csv')}.csv"

    def export_file(self, export_id: str) -> tuple[ExportRecord, bytes]:
        """A registered export's CSV as written (checked by its sha256), audited; only one
        made into :meth:`served_path`'s folder."""
        self.acting.require(P.EXPORT, action="export")
        record = next((e for e in self.store.exports() if e.id == export_id), None)
        folder = (self.engine.settings.home / "exports").resolve()
        if record is None or Path(record.path).parent != folder:
            raise NotFoundError(f"no export {export_id!r} served by this server")
        try:
            data = Path(record.path).read_bytes()
        except OSError as exc:
            raise NotFoundError(f"export {export_id} is no longer on disk") from exc
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise NotFoundError(f"export {export_id} changed on disk since it was made")
        self.acting.record(
            "export",
            case=record.case,
            purpose=record.purpose,
            sources=record.sources,
            details={"export": record.id, "phase": "download"},
        )
        return record, data


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
