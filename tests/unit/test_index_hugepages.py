"""Arrays in transparent huge pages (index/hugepages.py): what the refine codes and the id
table live in at scale. Past HUGE_MIN they are anonymous maps, which must behave as the
numpy arrays they replace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.index import hugepages

pytestmark = pytest.mark.unit


def test_a_large_array_is_a_zeroed_writable_map_and_a_small_one_plain_numpy() -> None:
    big = hugepages.empty((hugepages.HUGE_MIN // 40 + 1, 40), np.uint8)
    assert big.flags.writeable and big.flags.c_contiguous and not big.any()
    assert isinstance(big.base, memoryview) or big.base is not None  # over the map
    big[-1] = 7
    assert int(big.sum()) == 7 * 40
    small = hugepages.empty((10,), np.int32)
    assert small.base is None and not small.any()


def test_read_into_fills_from_a_file_and_says_when_it_is_short(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 255, (3000, 40), dtype=np.uint8)
    path = tmp_path / "codes"
    data.tofile(path)
    out = hugepages.empty((3000, 40), np.uint8)
    hugepages.read_into(path, out)
    np.testing.assert_array_equal(out, data)
    with pytest.raises(OSError, match="ended after"):
        hugepages.read_into(path, np.empty((3001, 40), np.uint8))
