"""The Ray runner on a Ray started inside the test process (``ray.init``, two CPUs): the
same faces as the local runner, and an item that kills its actor costs itself only.
Real models, real SQLite and FAISS. The two-node cluster is in test_ray_cluster.py.

Slow: ray.init alone took 8-19 s here, and the module 70-170 s on the shared box
(two actor starts and model loads per test), past the 20 s a default test may take."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.pipeline.pool import DIED
from faceindex.pipeline.ray_runner import RayRunner
from faceindex.pipeline.runner import run_ingest
from faceindex.sources.base import SourceItem
from faceindex.sources.folder import FolderSource
from tests.rayhelp import REPO, assert_same_faces, faces_by_item, needs_ray, write_photos

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_PHOTOS = 6


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    ray = needs_ray()
    # The actors import this test's sources (below) and the same faceindex as the test.
    paths = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(  # type: ignore[attr-defined]
        num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 * 1024
    )
    yield ray
    ray.shutdown()  # type: ignore[attr-defined]
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@dataclass(frozen=True)
class AbortSource:
    """A folder whose 'abort*' items abort the reading process, as dlib's CNN does on a
    2x2 image."""

    uri: str
    kind: str = "folder"

    def items(self) -> Iterator[SourceItem]:
        for path in sorted(Path(self.uri).iterdir()):
            yield SourceItem(path.name, path.stat().st_size, path.stat().st_mtime)

    def read(self, item: SourceItem) -> bytes:
        if item.locator.startswith("abort"):
            os.abort()
        return (Path(self.uri) / item.locator).read_bytes()


def _engine(tmp: Path, name: str) -> Engine:
    settings = Settings.load(tmp / name, workers=2, batch_size=2)
    return Engine.open(settings, create=True)


def test_a_ray_ingest_gives_the_local_runners_faces(
    local_ray: object, tmp_path: Path, astronaut: np.ndarray
) -> None:
    photos = write_photos(tmp_path / "photos", astronaut, N_PHOTOS)
    held = {}
    for name in ("local", "ray"):
        with _engine(tmp_path, name) as engine:
            rec = engine.add_source(
                "p", path=str(photos), owner="qa", legal_basis="consent", retention_days=1
            )
            if name == "local":
                summary = engine.ingest("p", in_process=True)
            else:
                with RayRunner(engine.settings, actors=2) as runner:
                    summary = run_ingest(
                        settings=engine.settings,
                        catalog=engine.catalog,
                        index=engine.index,
                        source=FolderSource(str(photos)),
                        source_id=rec.id,
                        model="dlib-resnet-v1",
                        runner=runner,
                    )
            assert summary.images_new == N_PHOTOS and not summary.failed, summary
            held[name] = faces_by_item(engine.catalog)
            assert engine.index.count() == len(held[name])
    assert len(held["local"]) >= N_PHOTOS
    assert_same_faces(held["ray"], held["local"])


def test_an_item_that_kills_its_ray_actor_costs_itself_only(
    local_ray: object, tmp_path: Path, astronaut: np.ndarray
) -> None:
    photos = write_photos(tmp_path / "photos", astronaut, 4)
    (photos / "abort.jpg").write_bytes(b"x")
    with _engine(tmp_path, "home") as engine:
        rec = engine.add_source(
            "p", path=str(photos), owner="qa", legal_basis="consent", retention_days=1
        )
        with RayRunner(engine.settings, actors=2) as runner:
            summary = run_ingest(
                settings=engine.settings,
                catalog=engine.catalog,
                index=engine.index,
                source=AbortSource(str(photos)),
                source_id=rec.id,
                model="test",
                runner=runner,
            )
        failures = {loc: why for _, loc, why in engine.catalog.failures()}
    # The actor died on abort.jpg (Ray restarted it and retried once); its batch's other
    # item ran alone and was ingested, abort.jpg alone died again and is recorded.
    assert failures == {"abort.jpg": DIED}
    assert summary.images_new == 4
