"""The runner seam: the listing is pulled lazily, any Runner commits through the one commit
path (screens included), and nothing a runner or worker imports reaches the engine or Ray."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faceindex.backends import open_catalog
from faceindex.catalog.base import ImageOutcome, NewSource
from faceindex.config import Settings
from faceindex.index.memory import MemoryIndex
from faceindex.pipeline.base import Commit
from faceindex.pipeline.plan import batches, pending
from faceindex.pipeline.runner import run_ingest
from faceindex.sources.base import ImageSource, SourceItem
from tests.contract.builders import face

pytestmark = pytest.mark.unit


@dataclass
class CountingSource:
    """``count`` listed items; counts how many items() has handed out."""

    count: int
    uri: str = "/nowhere"
    kind: str = "folder"
    pulled: int = 0

    def items(self) -> Iterator[SourceItem]:
        for i in range(self.count):
            self.pulled += 1
            yield SourceItem(f"{i:05d}.jpg", 10, 1.0, skip="not an image" if i == 3 else None)

    def read(self, item: SourceItem) -> bytes:
        raise AssertionError("a fake runner reads nothing")


def test_batches_pull_the_listing_lazily() -> None:
    src = CountingSource(10_000)
    first = next(batches(pending(src, {}, skipped=False), 8))
    assert [i.locator for i in first][:3] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert "00003.jpg" not in {i.locator for i in first}  # the skipped one goes elsewhere
    assert src.pulled <= 9  # 8 kept + the skipped one, not the source's 10 000


@dataclass
class FakeRunner:
    """A Runner that makes one face per item, and notes the largest batch in flight."""

    width: int = 3
    largest: int = 0
    seen: list[str] = field(default_factory=list)

    def run(
        self,
        source: ImageSource,
        source_id: int,
        batches: Iterator[list[SourceItem]],
        commit: Commit,
    ) -> None:
        for n, batch in enumerate(batches):
            self.largest = max(self.largest, len(batch))
            self.seen += [i.locator for i in batch]
            commit(
                [
                    ImageOutcome(
                        source_id,
                        i.locator,
                        i.size,
                        i.mtime,
                        f"{i.locator:0>64}"[-64:],
                        10,
                        10,
                        (face(n * 100 + k),),
                    )
                    for k, i in enumerate(batch)
                ]
            )


def test_any_runner_commits_through_the_one_commit_path(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    index = MemoryIndex(128)
    rec = catalog.add_source(
        NewSource(
            name="s",
            kind="folder",
            uri="/nowhere",
            owner="qa",
            legal_basis="consent",
            retention_days=1,
        )
    )
    runner = FakeRunner()
    settings = Settings.load(tmp_path / "home", batch_size=4)
    summary = run_ingest(
        settings=settings,
        catalog=catalog,
        index=index,
        source=CountingSource(20),
        source_id=rec.id,
        model="m",
        runner=runner,
        image_screen=lambda outcomes: {"00005.jpg": "erased before"},
        screen=lambda faces: [True] * len(faces),
    )
    assert runner.largest == 3  # 19 items, width 3: batches of 19 // 6
    assert len(runner.seen) == 19 and "00003.jpg" not in runner.seen
    assert summary.images_new == 18 and summary.faces_indexed == 18
    assert ("00005.jpg", "erased before") in summary.skipped  # the screen ran
    assert ("00003.jpg", "not an image") in summary.skipped
    assert index.count() == catalog.count_faces() == 18
    catalog.close()


def test_the_runners_import_neither_the_engine_nor_ray() -> None:
    code = (
        "import sys\n"
        "import faceindex.pipeline.runner, faceindex.pipeline.ray_runner, faceindex.pipeline.pool\n"
        "import faceindex.pipeline.worker, faceindex.vision.factory\n"
        "print(sorted(m for m in ('faceindex.engine', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
