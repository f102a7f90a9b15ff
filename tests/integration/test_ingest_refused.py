"""Erased bytes are refused by their sha256 before they are decoded, detected or embedded:
the runner hands the tombstones to its workers, which check right after hashing. A refused
item is skipped with its reason and never recorded, so after a lift it is read again."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.engine import Engine, build_source
from faceindex.pipeline.runner import run_ingest
from faceindex.pipeline.worker import WorkerState
from faceindex.types import DetectedFace, IngestSummary

pytestmark = pytest.mark.integration


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((400, 400, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class CountingAnalyzer:
    """A FaceAnalyzer stand-in that finds no face and records every image it was given."""

    calls: list[int] = field(default_factory=list)

    def analyze(self, rgb: np.ndarray) -> list[DetectedFace]:
        self.calls.append(int(rgb[0, 0, 0]))
        return []


def test_refused_bytes_are_never_analysed_nor_recorded(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "erased.png").write_bytes(png(90))
    (folder / "kept.png").write_bytes(png(120))
    rec = engine.add_source(
        "press", path=str(folder), owner="o", legal_basis="consent", retention_days=30
    )
    why = "erased (receipt rcp-0123456789abcdef)"
    refuse = {hashlib.sha256(png(90)).hexdigest(): why}
    analyzer = CountingAnalyzer()

    def ingest() -> IngestSummary:
        return run_ingest(
            settings=engine.settings,
            catalog=engine.catalog,
            index=engine.index,
            source=build_source(rec, engine.settings),
            source_id=rec.id,
            model="test",
            state=WorkerState(engine.settings, analyzer),  # type: ignore[arg-type]
            refuse=refuse,
        )

    summary = ingest()
    assert summary.skipped == [("erased.png", why)] and summary.failed == []
    assert analyzer.calls == [120]  # only the kept image reached the face models
    assert set(engine.catalog.seen_items(rec.id)) == {"kept.png"}
    refuse.clear()  # lifted: the unchanged file is read again, since it was never recorded
    again = ingest()
    assert again.images_new == 1 and analyzer.calls == [120, 90]
