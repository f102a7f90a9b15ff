"""Which of a source's items an ingest must still read, listed lazily.

A first pass over the listing only counts (for the progress total and the batch size);
the runner then pulls the items from a second pass as it needs them, so the driver holds
the catalog's seen items and the batches in flight, never the source's item list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from faceindex.sources.base import ImageSource, SourceItem

__all__ = ["Pending", "Seen", "batches", "pending", "survey"]

Seen = Mapping[str, tuple[int | None, float | None]]  # locator -> (size, mtime) recorded


@dataclass(frozen=True)
class Pending:
    todo: int  # to read
    skip: int  # to record as skipped, with why
    held: int  # already recorded, unchanged
    changed: int  # recorded before with another size or mtime: their old image may be unheld


def survey(source: ImageSource, seen: Seen) -> Pending:
    todo = skip = held = changed = 0
    for item in source.items():
        before = seen.get(item.locator)
        if before == (item.size, item.mtime):
            held += 1
            continue
        changed += before is not None
        if item.skip is None:
            todo += 1
        else:
            skip += 1
    return Pending(todo, skip, held, changed)


def pending(source: ImageSource, seen: Seen, *, skipped: bool) -> Iterator[SourceItem]:
    """The new or changed items still to be read (``skipped``: those to record as skipped)."""
    for item in source.items():
        if seen.get(item.locator) != (item.size, item.mtime) and (item.skip is not None) is skipped:
            yield item


def batches(items: Iterator[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    while batch := list(islice(items, size)):
        yield batch
