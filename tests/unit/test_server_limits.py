"""Rate limiting, admission control, timeouts, the index lock and result ownership."""

from __future__ import annotations

import threading
import time

import anyio
import numpy as np
import pytest

from faceindex.errors import NotFoundError
from faceindex.index.memory import MemoryIndex
from faceindex.server.concurrency import Busy, EngineRunner, LockedIndex, TimedOut
from faceindex.server.ratelimit import RateLimiter
from faceindex.server.searches import ShownFaces

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # one token a second
    assert limiter.take("b") == 0  # buckets are per key
    clock.now = 1.0
    assert limiter.take("a") == 0
    assert limiter.take("a") >= 1


def test_waiting_spends_nothing_and_the_table_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock, max_keys=3)
    assert limiter.waiting("a") == 0 and limiter.waiting("a") == 0  # a peek, not a request
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 1]
    assert limiter.waiting("a") == 1
    clock.now = 0.5
    assert limiter.waiting("a") == 1  # half a token back: still a wait
    clock.now = 1.0
    assert limiter.waiting("a") == 0
    for i in range(100):  # many addresses, one request each
        limiter.take(f"addr-{i}")
        assert len(limiter._buckets) <= 3
    assert [limiter.take("z") for _ in range(3)] == [0, 0, 1]  # the newest keeps its state


class FakePool:
    """Stands in for EnginePool: lends a plain object instead of an engine."""

    def __init__(self) -> None:
        self.primary = object()

    def borrow(self, deadline: float = 0.0):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        return nullcontext(self.primary)


def test_runner_refuses_past_capacity_and_times_out() -> None:
    runner = EngineRunner(FakePool(), threads=1, queue=1, timeout_s=0.5)  # type: ignore[arg-type]
    release = threading.Event()
    outcomes: list[object] = []

    async def call(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            outcomes.append(await runner.run(fn))
        except (Busy, TimedOut) as exc:
            outcomes.append(type(exc))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, lambda e: release.wait(5))  # runs, then times out
            tg.start_soon(call, lambda e: "queued")  # waits for the thread slot
            await anyio.sleep(0.05)
            tg.start_soon(call, lambda e: "third")  # over threads + queue: Busy at once
            await anyio.sleep(0.05)
            assert runner.in_flight == 2
        release.set()

    anyio.run(main)
    assert outcomes[0] is Busy
    assert TimedOut in outcomes
    assert runner.in_flight == 0


def test_locked_index_lets_writers_in_between_readers() -> None:
    index = LockedIndex(MemoryIndex(4, "l2"))
    index.add(np.array([1]), np.ones((1, 4), np.float32))
    stop = time.monotonic() + 0.5
    errors: list[BaseException] = []

    def reader() -> None:
        while time.monotonic() < stop:
            try:
                _, ids = index.search(np.ones((1, 4), np.float32), 1)
                assert ids[0][0] >= 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    added = 0
    while time.monotonic() < stop:
        added += 1
        index.add(np.array([added + 1]), np.full((1, 4), added, np.float32))
    for t in threads:
        t.join()
    assert not errors and index.count() == added + 1


def test_shown_faces_are_owned_and_expire() -> None:
    clock = Clock()
    shown = ShownFaces(ttl_s=10, clock=clock)
    sid = shown.record("ann", [1, 2])
    shown.check("ann", sid, 1)
    with pytest.raises(NotFoundError):
        shown.check("bob", sid, 1)
    with pytest.raises(NotFoundError):
        shown.check("ann", sid, 3)
    clock.now = 11
    with pytest.raises(NotFoundError):
        shown.check("ann", sid, 1)
