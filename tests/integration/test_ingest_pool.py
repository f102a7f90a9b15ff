"""Worker processes that die on an item (an abort in C, a call stuck past the hard limit):
the item is recorded with the reason, every other item of its batch is still ingested."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.pipeline.pool import DIED
from faceindex.pipeline.runner import run_ingest
from faceindex.sources.base import SourceItem

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~5 pool starts with real models


@dataclass(frozen=True)
class PoisonSource:
    """A folder whose 'abort*' items abort the reading process, as dlib's CNN does on a
    2x2 image, and whose 'stuck*' items spin with SIGALRM blocked, as a call stuck in C."""

    uri: str
    kind: str = "folder"

    def items(self) -> Iterator[SourceItem]:
        for path in sorted(Path(self.uri).iterdir()):
            yield SourceItem(path.name, path.stat().st_size, path.stat().st_mtime)

    def read(self, item: SourceItem) -> bytes:
        if item.locator.startswith("abort"):
            os.abort()
        if item.locator.startswith("stuck"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            while True:
                pass
        return (Path(self.uri) / item.locator).read_bytes()


def test_a_worker_that_dies_costs_its_item_only(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
        (folder / f"p{i:02d}.png").write_bytes(buf.getvalue())
    (folder / "abort.png").write_bytes(b"x")
    (folder / "stuck.png").write_bytes(b"x")
    settings = Settings.load(tmp_path / "home", workers=2, batch_size=3, ingest_item_timeout_s=1.0)
    with Engine.open(settings, create=True) as engine:
        rec = engine.add_source(
            "p", path=str(folder), owner="qa", legal_basis="consent", retention_days=1
        )
        summary = run_ingest(
            settings=settings,
            catalog=engine.catalog,
            index=engine.index,
            source=PoisonSource(str(folder)),
            source_id=rec.id,
            model="test",
        )
        failures = {loc: why for _, loc, why in engine.catalog.failures()}
    # Before: the first abort raised BrokenProcessPool out of the runner and the run died.
    assert failures == {"abort.png": DIED, "stuck.png": DIED}
    assert summary.images_new == 10
