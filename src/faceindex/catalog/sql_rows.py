"""Catalog rows to and from the dataclasses: new faces' INSERT, a source row's record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faceindex.sources.base import SourceRecord
from faceindex.types import DetectedFace

if TYPE_CHECKING:
    from faceindex.catalog.sql import Row, Tx

__all__ = ["FaceValues", "face_values", "insert_faces", "source_record"]


_FACE_COLUMNS = (
    "id",
    "image_id",
    "box_left",
    "box_top",
    "box_right",
    "box_bottom",
    "landmarks",
    "detector",
    "detector_score",
    "quality",
    "size",
    "sharpness",
    "pose",
    "model",
    "embedding",
    "thumbnail",
    "created_at",
    "generation",
)


@dataclass(frozen=True)
class FaceValues:
    """A new face's column values but its image id and generation: built before the
    transaction, which only has to add those two."""

    values: tuple[object, ...]
    embedding: np.ndarray


def face_values(face: DetectedFace, model: str, now: str) -> FaceValues:
    vec = np.ascontiguousarray(face.embedding, dtype=np.float32)
    values = (
        *(int(v) for v in face.bbox.as_list()),
        json.dumps([[float(x), float(y)] for x, y in face.landmarks]),
        face.detector,
        float(face.detector_score),
        float(face.quality.score),
        int(face.quality.size),
        float(face.quality.sharpness),
        float(face.quality.pose),
        model,
        vec.tobytes(),
        None if face.thumbnail is None else bytes(face.thumbnail),
        now,
    )
    return FaceValues(values, vec)


def insert_faces(tx: Tx, faces: Sequence[tuple[int, FaceValues]]) -> list[tuple[int, np.ndarray]]:
    """Insert (image id, face) rows in as few statements as the dialect allows; the new
    ids (allocated first, so each face's is known) with their embeddings, in order."""
    ids = tx.new_ids("faces", len(faces))
    tx.insert_rows(
        "faces",
        _FACE_COLUMNS,
        [
            (fid, image_id, *f.values, tx.generation)
            for fid, (image_id, f) in zip(ids, faces, strict=True)
        ],
    )
    return [(fid, f.embedding) for fid, (_, f) in zip(ids, faces, strict=True)]


def source_record(r: Row) -> SourceRecord:
    return SourceRecord(
        id=int(r["id"]),
        name=r["name"],
        kind=r["kind"],
        uri=r["uri"],
        owner=r["owner"],
        legal_basis=r["legal_basis"],
        legal_reference=r["legal_reference"],
        purposes=tuple(json.loads(r["purposes"])),
        retention_days=int(r["retention_days"]),
        jurisdiction=r["jurisdiction"],
        created_at=r["created_at"],
    )
