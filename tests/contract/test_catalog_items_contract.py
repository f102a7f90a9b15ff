"""Catalog contract for ingest's bookkeeping: skipped entries are recorded with why (and kept
apart from failures), and an image whose location moved to new bytes is reported unheld."""

from __future__ import annotations

from dataclasses import replace

import pytest

from faceindex.catalog.base import Catalog
from tests.contract.builders import face, new_source, outcome

pytestmark = pytest.mark.contract


def test_skipped_entries_are_recorded_apart_from_failures(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    fifo = replace(outcome(src.id, "pipe.jpg", "", error="a FIFO, not a file"), skipped=True)
    cat.record(
        [fifo, outcome(src.id, "bad.jpg", "", error="DecodeError: x"), outcome(src.id, "a", "A")],
        model="m",
    )
    assert cat.failures(skipped=True) == [("src", "pipe.jpg", "a FIFO, not a file")]
    assert cat.failures(src.id, skipped=True) == [("src", "pipe.jpg", "a FIFO, not a file")]
    assert cat.failures() == [("src", "bad.jpg", "DecodeError: x")]
    assert set(cat.seen_items(src.id)) == {"pipe.jpg", "bad.jpg", "a"}  # a rerun holds them
    assert cat.stats()["failed"] == 1 and cat.stats()["locations"] == 1


def test_an_image_whose_location_moved_is_unheld_until_erased(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    cat.record([outcome(src.id, "a.jpg", "old bytes", (face(1),))], model="m")
    assert cat.unheld_images() == []
    cat.record([outcome(src.id, "a.jpg", "new bytes", (face(2),))], model="m")  # same path
    (old,) = cat.unheld_images()
    assert cat.stats()["images"] == 2 and cat.stats()["locations"] == 1
    erased = cat.delete_images([old])
    assert erased.image_ids == (old,) and len(erased.face_ids) == 1
    assert cat.unheld_images() == [] and cat.stats()["images"] == 1
