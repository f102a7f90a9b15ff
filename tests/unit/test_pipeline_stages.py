"""The per-item stage: every item becomes an outcome with a reason a user can read; nothing
an item does (hang, crash dlib, raise something odd) escapes into the batch."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from faceindex.catalog.base import ImageOutcome
from faceindex.errors import ItemTimeout
from faceindex.pipeline.deadline import time_limit
from faceindex.pipeline.stages import process_item
from faceindex.sources.base import SourceItem
from faceindex.types import DetectedFace

pytestmark = pytest.mark.unit

DLIB_TEXT = (
    "\n\nError detected at line 2957.\nError detected in file /tmp/pip-wheel-r6hnqic3/dlib_0e/"
    "dlib/cuda/cpu_dlib.cpp.\nFailing expression was filters.nr() <= data.nr()"
)


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Source:
    """An ImageSource whose read() does what a test needs."""

    data: bytes = b""
    delay: float = 0.0
    error: BaseException | None = None
    kind: str = "fake"
    uri: str = "fake://"

    def items(self) -> Iterator[SourceItem]:
        yield SourceItem("x.png")

    def read(self, item: SourceItem) -> bytes:
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.data


@dataclass
class Analyzer:
    """A FaceAnalyzer stand-in that fails the way dlib does, and counts its calls."""

    error: BaseException | None = None
    calls: list[tuple[int, ...]] = field(default_factory=list)

    def analyze(self, rgb: np.ndarray) -> list[DetectedFace]:
        self.calls.append(rgb.shape)
        if self.error is not None:
            raise self.error
        return []


def run(
    source: Source, analyzer: Analyzer, item: SourceItem | None = None, **kw: object
) -> ImageOutcome:
    limits: dict[str, object] = {"max_pixels": 10**8, "max_bytes": 10**8, **kw}
    return process_item(source, 1, item or SourceItem("x.png"), analyzer, **limits)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 3000), (4000, 5), (20, 12000)])
def test_tiny_and_strip_images_are_no_face_and_never_reach_dlib(size: tuple[int, int]) -> None:
    # Before: dlib's CNN failed on them with its assertion text and build paths (2x2 and
    # 3x3 also corrupted the heap and aborted the process).
    analyzer = Analyzer(error=RuntimeError(DLIB_TEXT))
    out = run(Source(png(*size)), analyzer, min_face_size=20, detect_max_side=1600)
    assert out.error is None and out.faces == () and (out.width, out.height) == size
    assert analyzer.calls == []


def test_a_dlib_failure_reads_as_such_without_its_internals() -> None:
    out = run(Source(png(64, 64)), Analyzer(error=RuntimeError(DLIB_TEXT)), min_face_size=20)
    assert out.error == "face analysis failed (64x64 image)"
    assert out.sha256 is not None


def test_an_item_over_its_time_limit_is_a_recorded_failure() -> None:
    started = time.monotonic()
    out = run(Source(png(8, 8), delay=30), Analyzer(), timeout_s=0.3)
    assert time.monotonic() - started < 5
    assert out.error is not None and out.error.startswith("ItemTimeout: took longer than 0.3 s")


def test_an_unexpected_exception_costs_the_item_not_the_batch() -> None:
    out = run(Source(error=KeyError("member")), Analyzer())
    assert out.error == "internal error: KeyError: 'member'"


def test_reasons_and_locators_are_valid_utf8() -> None:
    odd = "caf\udce9.jpg"  # a non-UTF-8 name as Python hands it over
    out = run(Source(error=OSError(f"cannot open {odd}")), Analyzer())
    assert out.error is not None and "caf\\xe9.jpg" in out.error
    out.error.encode("utf-8")


def test_a_skipped_entry_is_recorded_with_why_and_not_read() -> None:
    out = run(Source(error=AssertionError("read")), Analyzer(), SourceItem("p.jpg", skip="a FIFO"))
    assert out.skipped and out.error == "a FIFO" and out.sha256 is None


def test_the_time_limit_puts_back_a_timer_armed_before_it() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with time_limit(10):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 0.5
        with pytest.raises(ItemTimeout), time_limit(0.05):
            time.sleep(1)
        time.sleep(0.6)
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_refused_bytes_are_skipped_before_decoding() -> None:
    import hashlib

    data = b"erased bytes that are no image at all"
    why = "erased (receipt rcp-0123456789abcdef)"
    analyzer = Analyzer()
    out = run(Source(data), analyzer, refuse={hashlib.sha256(data).hexdigest(): why})
    # Before: decoded first, so this was a decode failure (and an image one, analysed).
    assert out.skipped and out.error == why and out.sha256 == hashlib.sha256(data).hexdigest()
    assert analyzer.calls == []
    other = run(Source(data), Analyzer(), refuse={"0" * 64: why})
    assert not other.skipped and other.error and "erased" not in other.error
