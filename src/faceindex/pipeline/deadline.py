"""A per-item time limit for ingest (``Settings.ingest_item_timeout_s``), by SIGALRM.

The alarm interrupts a blocking read (a stalled network share, a FIFO swapped in after the
listing) and Python code at once; a long call inside dlib or a Pillow decoder is interrupted
when it returns to Python, so it bounds the item, not that one call. Signals reach only the
main thread: elsewhere (an ingest run from a server thread) no limit is armed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from faceindex.errors import ItemTimeout

__all__ = ["time_limit"]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ItemTimeout` in the body once ``seconds`` have passed (0: no limit).
    A timer someone else armed (e.g. pytest-timeout) is put back with its time left."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds <= 0 or not usable:
        yield
        return
    armed = True

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise ItemTimeout(f"took longer than {seconds:g} s (ingest_item_timeout_s)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)
