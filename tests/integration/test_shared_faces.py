"""Real labeled photos from ../shared/faces (skipped where absent): identities are found by
search, and the annotated crowd photos yield their hand-drawn boxes.

Figures are printed (-s) and attached to the report as user properties."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceindex.engine import Engine
from faceindex.search.searcher import knn
from faceindex.types import BBox
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.decode import decode_image

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]

Record = Callable[[str, object], None]


def _ingest(engine: Engine, name: str, folder: Path) -> None:
    engine.add_source(
        name, path=str(folder), owner="Evaluation", legal_basis="consent", retention_days=1
    )
    summary = engine.ingest(name)
    assert not summary.failed, summary.failed


def test_knn_identities_are_found_by_search(
    engine: Engine, shared_faces: Path, record_property: Record
) -> None:
    root = shared_faces / "face-recognition-knn"
    _ingest(engine, "knn", root)
    photos = sorted(root.glob("*/*.jp*g"))
    hits = 0
    for photo in photos:
        results = engine.search(photo.read_bytes(), top_k=3, largest=True)
        others = [
            m
            for m in results[0].matches
            if not any(p.locator == str(photo.relative_to(root)) for p in m.locations)
        ]
        best = others[0]
        same = best.locations[0].locator.split("/")[0] == photo.parent.name
        hits += same and best.decision == "match"
    rank1 = hits / len(photos)
    record_property("knn_rank1", rank1)
    print(
        f"\nface-recognition-knn: rank-1 (leave-one-out, match decision) {rank1:.3f} "
        f"over {len(photos)} probes"
    )
    assert rank1 >= 0.9


def test_deepface_identities_rank1(
    engine: Engine, shared_faces: Path, record_property: Record
) -> None:
    root = shared_faces / "deepface-pairs"
    with open(root / "derived_identity_groups.csv") as fh:
        group = {row["file"]: row["group_id"] for row in csv.DictReader(fh)}
    _ingest(engine, "deepface", root / "images")
    rows = engine.catalog.query(  # type: ignore[attr-defined]
        "SELECT f.id, it.locator FROM faces f JOIN items it ON it.image_id = f.image_id"
    )
    face_file = {int(r[0]): Path(r[1]).name for r in rows}
    vectors = dict(
        (int(i), v)
        for ids, vecs in engine.catalog.iter_embeddings()
        for i, v in zip(ids, vecs, strict=True)
    )
    probes = hits = 0
    for fid, name in face_file.items():
        if name not in group or sum(g == group[name] for g in group.values()) < 2:
            continue
        neighbours = knn(engine.catalog, engine.index, vectors[fid][None, :], 2)[0]
        best = next(row for _, row in neighbours if row.id != fid)
        other = Path(best.locations[0].locator).name
        probes += 1
        hits += group.get(other) == group[name]
    rank1 = hits / probes
    record_property("deepface_rank1", rank1)
    print(f"\ndeepface-pairs: rank-1 (leave-one-out) {rank1:.3f} over {probes} probe faces")
    assert probes >= 40
    assert rank1 >= 0.9


def test_annotated_voc_photos_yield_their_boxes(
    analyzer: FaceAnalyzer, shared_faces: Path, record_property: Record
) -> None:
    root = shared_faces / "multi-face"
    truth: dict[str, list[BBox]] = {}
    with open(root / "annotations" / "dlib_face_boxes.csv") as fh:
        for row in csv.DictReader(fh):
            if row["ignore"] == "1":
                continue
            x, y, w, h = (int(row[k]) for k in ("x", "y", "w", "h"))
            truth.setdefault(row["file"], []).append(BBox(x, y, x + w, y + h))
    assert len(truth) == 9
    total = found = 0
    for name, boxes in truth.items():
        rgb = decode_image((root / name).read_bytes(), max_pixels=10**8, max_bytes=10**8)
        detected = [d.bbox for d in analyzer.detector.detect(rgb)]
        for box in boxes:
            total += 1
            found += any(box.iou(d) >= 0.5 for d in detected)
    recall = found / total
    record_property("voc_recall_iou50", recall)
    print(f"\nmulti-face VOC photos: recall at IoU 0.5 = {recall:.3f} ({found}/{total} boxes)")
    assert total >= 40
    assert recall >= 0.8


def test_embeddings_are_raw_dlib_scale(engine: Engine, shared_faces: Path) -> None:
    _ingest(engine, "knn", shared_faces / "face-recognition-knn")
    norms = [float(np.linalg.norm(v)) for _, vecs in engine.catalog.iter_embeddings() for v in vecs]
    assert norms and all(1.1 < n < 1.8 for n in norms)
