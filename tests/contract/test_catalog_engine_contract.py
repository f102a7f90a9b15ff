"""The catalog contract, part three: a real engine (real models) over each catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.contract


@pytest.mark.integration
def test_engine_ingests_and_searches_over_this_catalog(
    catalog_url: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    """Real models, a tiny generated folder: duplicates, a mirror image and a broken file."""
    from faceindex.config import Settings
    from faceindex.engine import Engine
    from tests.conftest import to_jpeg

    photos = tmp_path / "photos"
    (photos / "copies").mkdir(parents=True)
    original = to_jpeg(astronaut)
    (photos / "astronaut.jpg").write_bytes(original)
    (photos / "copies" / "same-bytes.jpg").write_bytes(original)
    (photos / "mirrored.jpg").write_bytes(to_jpeg(np.ascontiguousarray(astronaut[:, ::-1])))
    (photos / "broken.jpg").write_bytes(original[: len(original) // 3])
    settings = Settings.load(
        tmp_path / "home",
        catalog_url=catalog_url,
        index_url="memory://",
        workers=1,
        detect_fallback=False,
    )
    with Engine.open(settings, create=True) as eng:
        eng.add_source(
            "photos", path=str(photos), owner="lab", legal_basis="consent", retention_days=7
        )
        summary = eng.ingest("photos", in_process=True)
        # astronaut() holds two faces dlib finds: Eileen Collins and the one on her badge.
        assert summary.faces_indexed == 4
        assert [loc for loc, _ in summary.failed] == ["broken.jpg"]
        assert eng.catalog.stats() == {
            "sources": 1,
            "images": 2,
            "locations": 3,
            "failed": 1,
            "faces": 4,
        }
    # The memory index starts empty: reopening rebuilds it from this catalog's embeddings.
    with Engine.open(settings) as eng:
        assert eng.index.count() == 4
        (result,) = eng.search(original, largest=True)
        best = result.matches[0]
        assert best.decision == "match" and best.distance < 0.05
        assert sorted(p.locator for p in best.locations) == [
            "astronaut.jpg",
            "copies/same-bytes.jpg",
        ]
        mirrored = [m for m in result.matches if m.locations[0].locator == "mirrored.jpg"]
        assert any(m.decision == "match" for m in mirrored)
