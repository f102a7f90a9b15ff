"""Catalog rows to and from the dataclasses: a new face's INSERT, a source row's record."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from faceindex.errors import StorageError
from faceindex.sources.base import SourceRecord
from faceindex.types import DetectedFace

if TYPE_CHECKING:
    from faceindex.catalog.sql import Row, Tx

__all__ = ["insert_face", "source_record"]


def insert_face(
    tx: Tx, image_id: int, face: DetectedFace, model: str, now: str
) -> tuple[int, np.ndarray]:
    vec = np.ascontiguousarray(face.embedding, dtype=np.float32)
    fid = tx.insert(
        "INSERT INTO faces (image_id, box_left, box_top, box_right, box_bottom, landmarks,"
        " detector, detector_score, quality, size, sharpness, pose, model, embedding,"
        " thumbnail, created_at, generation) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            image_id,
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
            tx.generation,
        ),
    )
    if fid is None:
        raise StorageError("the catalog returned no id for a new face")
    return fid, vec


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
