"""The server's analysis worker process, with real dlib: faces come back, a bad image's error
comes back as itself, and a call past its deadline stops the process (issue 9, item 5)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.errors import DecodeError
from faceindex.server.concurrency import TimedOut
from faceindex.server.workers import AnalysisWorker
from faceindex.vision.analyze import ImageBoxes, ImageFaces
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration

LIMITS = {"max_pixels": 60_000_000, "max_bytes": 64 * 1024 * 1024}


@pytest.fixture(scope="module")
def worker() -> Iterator[AnalysisWorker]:
    w = AnalysisWorker(Settings.load("/nonexistent-home-for-workers"), max_rss_mb=4096)
    yield w
    w.stop()


def far() -> float:
    return time.monotonic() + 300


def test_faces_and_boxes_come_back(worker: AnalysisWorker, astronaut: np.ndarray) -> None:
    photo = to_jpeg(astronaut)
    found = worker.call("analyze_image", photo, far(), **LIMITS)
    assert isinstance(found, ImageFaces) and (found.width, found.height) == (512, 512)
    assert found.faces and all(f.embedding.shape == (128,) for f in found.faces)
    assert all(f.thumbnail == b"" for f in found.faces)  # a probe's faces are never stored
    boxes = worker.call("detect_image", photo, far(), **LIMITS)
    assert isinstance(boxes, ImageBoxes)
    assert [d.bbox for d in boxes.detections] == [f.bbox for f in found.faces]


def test_a_bad_image_raises_its_own_error(worker: AnalysisWorker) -> None:
    pid = worker.pid
    with pytest.raises(DecodeError, match="not an image"):
        worker.call("analyze_image", b"not an image at all", far(), **LIMITS)
    assert worker.pid == pid  # an error answer is not a reason to restart


def test_a_call_past_its_deadline_stops_the_process(
    worker: AnalysisWorker, astronaut: np.ndarray
) -> None:
    photo = to_jpeg(astronaut)
    worker.call("detect_image", photo, far(), **LIMITS)  # ready: models loaded
    pid = worker.pid
    with pytest.raises(TimedOut):
        worker.call("analyze_image", photo, time.monotonic() + 0.005, **LIMITS)
    assert worker.pid != pid  # killed at the deadline; a fresh one is loading
    again = worker.call("analyze_image", photo, far(), **LIMITS)
    assert again.faces


def test_a_worker_over_its_memory_limit_is_replaced(astronaut: np.ndarray) -> None:
    # glibc may keep a big analysis's heap: a worker holding more than its limit after a
    # call is restarted, so no worker stays large.
    small = AnalysisWorker(Settings.load("/nonexistent-home-for-workers"), max_rss_mb=1)
    try:
        small.start()
        pid = small.pid
        found = small.call("analyze_image", to_jpeg(astronaut), far(), **LIMITS)
        assert found.faces  # the answer still comes back ...
        assert small.pid != pid  # ... and the worker that gave it is replaced
    finally:
        small.stop()


def test_ingest_faces_keep_their_thumbnails(astronaut: np.ndarray) -> None:
    """Only the probe path drops thumbnails: the faces an ingest stores keep theirs."""
    from faceindex.vision.factory import build_analyzer

    analyzer = build_analyzer(Settings.load("/nonexistent-home-for-workers"))
    faces = analyzer.analyze(astronaut)
    assert faces and all(f.thumbnail.startswith(b"\xff\xd8") for f in faces)


def test_serve_starts_its_analysis_workers_before_the_first_probe() -> None:
    # Started at its first probe, a worker made that probe wait ~4 s for its models (the
    # slowest in-the-wild probe of benchmarks/probe_latency.py): serve starts them at once.
    from faceindex.server.app import remote_analyzers

    settings = Settings.load("/nonexistent-home-for-workers", server_threads=2)
    lazy = remote_analyzers(settings)
    assert [a.worker.pid for a in lazy] == [None, None]
    warm = remote_analyzers(settings, start=True)
    try:
        assert all(a.worker.pid is not None for a in warm)
        conn = warm[0].worker._conn
        assert conn is not None and conn.poll(120)  # it says "ready" with no call made
    finally:
        for a in warm:
            a.worker.stop()
