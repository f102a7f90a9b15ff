"""``within`` sets: the catalog's come sorted and are only checked (in halves on two
threads past ASCENDING_SPLIT ids); anything else is sorted and deduplicated."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from faceindex.index import base
from faceindex.index.base import as_within, ascending


@pytest.mark.parametrize("n", [2, 5, 70_001, 300_003])
@pytest.mark.parametrize("pooled", [False, True])
def test_the_check_finds_any_pair_out_of_order(
    monkeypatch: pytest.MonkeyPatch, n: int, pooled: bool
) -> None:
    monkeypatch.setattr(base, "ASCENDING_CHUNK", 1000)  # many chunks, pairs across their seams
    monkeypatch.setattr(base, "ASCENDING_SPLIT", 1000)
    pool = ThreadPoolExecutor(2) if pooled else None
    ids = np.unique(np.random.default_rng(n).choice(10 * n, n, replace=False)).astype(np.int64)
    assert ascending(ids, pool)
    # the first, last and middle pairs (either side of the split) and a chunk seam
    for i in sorted({0, n // 2 - 1, n // 2, n - 2, min(999, n - 2)}):
        if not 0 <= i <= n - 2:
            continue
        swapped, tie = ids.copy(), ids.copy()
        swapped[[i, i + 1]] = ids[[i + 1, i]]
        tie[i + 1] = ids[i]
        assert not ascending(swapped, pool), i
        assert not ascending(tie, pool), i
        np.testing.assert_array_equal(as_within(swapped, pool), ids)
        np.testing.assert_array_equal(as_within(tie, pool), np.unique(tie))
    assert as_within(ids, pool) is not None and ascending(ids[:1]) and ascending(ids[:0])


def test_no_restriction_and_lists() -> None:
    assert as_within(None) is None
    np.testing.assert_array_equal(as_within([5, 3, 3, 9]), [3, 5, 9])
