"""CSV exports of search results or of a source. Never embeddings, never thumbnails.

Every export is registered (path, rows, sha256, sources, case, purpose), so erasing a
source can list where copies of its data went. :class:`Exports` is the audited collaborator
of the Governance facade that makes them.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from faceindex.catalog.base import Catalog
from faceindex.engine import Engine
from faceindex.errors import InputError
from faceindex.governance.acting import Acting
from faceindex.governance.base import ExportRecord
from faceindex.governance.roles import Permission
from faceindex.governance.store import GovernanceStore, _now, new_id
from faceindex.types import SearchResult

__all__ = ["Exports", "result_rows", "source_rows", "write_csv"]

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
    rec = catalog.get_source(source)
    images = catalog.image_ids_of_source(rec.id)
    face_ids = catalog.face_ids_of_images(images)
    groups = catalog.image_groups(images)
    rows = []
    for fid, face in sorted(catalog.faces(face_ids).items()):
        for loc in face.locations:
            if loc.source != source:
                continue
            rows.append(
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
    return rows


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, object]]) -> tuple[int, str]:
    """Write atomically (temp file, fsync, rename); returns (rows, sha256 of the file)."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name for the export")
    path.parent.mkdir(parents=True, exist_ok=True)
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
    return n, hashlib.sha256(path.read_bytes()).hexdigest()


class Exports:
    def __init__(self, engine: Engine, store: GovernanceStore, acting: Acting) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting

    def export_results(
        self, results: Sequence[SearchResult], path: Path | str, *, case: str, purpose: str
    ) -> ExportRecord:
        self.acting.require(P.EXPORT, action="export", case=case, purpose=purpose)
        rows, sources = result_rows(results)
        return self._export("results", Path(path), RESULT_COLUMNS, rows, sources, case, purpose)

    def export_source(
        self, name: str, path: Path | str, *, case: str = "", purpose: str = ""
    ) -> ExportRecord:
        self.acting.require(P.EXPORT, action="export", sources=(name,), case=case, purpose=purpose)
        rows = source_rows(self.engine.catalog, name)
        return self._export("source", Path(path), SOURCE_COLUMNS, rows, {name}, case, purpose)

    def _export(
        self,
        kind: str,
        path: Path,
        columns: list[str],
        rows: list[dict[str, object]],
        sources: set[str],
        case: str,
        purpose: str,
    ) -> ExportRecord:
        n, sha = write_csv(path, columns, rows)
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
            face_ids=tuple(sorted({int(str(r["face_id"])) for r in rows})),
            details={"export": record.id, "kind": kind, "path": record.path, "sha256": sha},
        )
        return record

    def exports(self, source: str | None = None) -> list[ExportRecord]:
        self.acting.require(P.EXPORT, P.READ_AUDIT, action="export")
        return self.store.exports(source)
