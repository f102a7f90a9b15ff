"""Large arrays that searches gather from at random, in transparent huge pages.

A restricted search at 100M faces gathers the refine codes of every id of its set (1M rows
of 40 B spread over a 4 GB array) and looks each id up in a 400 MB table; with 4 KiB pages
nearly every row is a TLB miss as well as a cache miss. Anonymous memory advised
``MADV_HUGEPAGE`` (the kernel's ``madvise`` mode, its default on Debian) maps 2 MiB pages
where it can: 1M codes gathered in 40 ms against 62 (docs/BENCHMARKS.md). Where the
platform has no such advice, or the array is small, a plain numpy array.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

import numpy as np

__all__ = ["empty", "read_into"]

HUGE_MIN = 8 << 20  # smaller arrays: plain numpy (a huge page is 2 MiB)


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised-looking (in fact zeroed, as anonymous memory is) array."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes < HUGE_MIN or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(shape, dtype=dt)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(OSError):  # a kernel without transparent huge pages: 4 KiB
        buf.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(buf, dtype=dt, count=nbytes // dt.itemsize).reshape(shape)


def read_into(path: Any, out: np.ndarray) -> None:
    """Fill ``out`` (C-contiguous) with the first ``out.nbytes`` bytes of file ``path``."""
    view = memoryview(out.reshape(-1).view(np.uint8).data)
    with open(path, "rb", buffering=0) as fh:
        done = 0
        while done < len(view):
            got = fh.readinto(view[done : done + (1 << 30)])
            if not got:
                raise OSError(f"{path} ended after {done} of {len(view)} bytes")
            done += got
