"""Content tombstones for re-encoded copies: an erased image's perceptual hash is kept with
its sha256 tombstone (governance/store.py), ingest refuses near-duplicates of it, and
``erase verify`` fails when one is held again.

"Near" is the photo groups' measure (vision/phash.py: Hamming distance within
``NEAR_BITS``). Copies of an erased image that other sources still held when it was erased
(a source erasure keeps what another source holds) were kept on purpose: verify does not
count those, while a new copy of the same bytes as a held image is only a new location of
content already held, so the screen lets it through.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.governance.store import GovernanceStore

__all__ = ["hashes_of", "keep_copies", "near_held", "near_refusals"]


def hashes_of(catalog: Catalog, digests: Mapping[str, str]) -> dict[str, int]:
    """sha256 -> perceptual hash, for a plan's images (image id as text -> sha256)."""
    hashes = catalog.image_hashes([int(i) for i in digests])
    return {digests[str(i)]: h for i, h in hashes.items() if str(i) in digests}


def keep_copies(catalog: Catalog, store: GovernanceStore, tombstoned: Collection[str]) -> None:
    """After an erasure's commit: record which near-duplicates of its tombstoned images the
    catalog still holds (kept on purpose, see the module docstring)."""
    hashes = store.content_hashes(sorted(tombstoned))
    kept = {sha: [i for i, _ in catalog.near_images(h)] for sha, (h, _) in hashes.items()}
    store.keep_near_copies({sha: ids for sha, ids in kept.items() if ids})


def near_held(catalog: Catalog, store: GovernanceStore, digests: Mapping[str, str]) -> list[int]:
    """Image ids holding a near-duplicate of a receipt's erased content that the erasure
    did not keep (``digests``: sha256 -> "held" | "lifted"). Same bytes are left to the
    exact check."""
    found: set[int] = set()
    for _sha, (h, kept) in store.content_hashes(sorted(digests)).items():
        found.update(i for i, _ in catalog.near_images(h) if i not in kept)
    if found:
        exact = set(catalog.images_holding(digests).values())
        found -= exact
    return sorted(found)


def near_refusals(
    store: GovernanceStore, outcomes: Sequence[ImageOutcome], catalog: Catalog | None = None
) -> dict[str, str]:
    """locator -> why, for outcomes whose perceptual hash is near a tombstoned image's.
    With ``catalog``, bytes the catalog already holds pass (a new location only)."""
    hashed = [o for o in outcomes if o.phash is not None and o.sha256 and o.error is None]
    if not hashed:
        return {}
    hits = store.near_tombstoned([o.phash for o in hashed if o.phash is not None])
    if not hits:
        return {}
    held: Collection[str] = ()
    if catalog is not None:
        held = catalog.images_holding([o.sha256 for o in hashed if o.sha256])
    out: dict[str, str] = {}
    for o in hashed:
        hit = hits.get(o.phash) if o.phash is not None else None
        if hit is None or o.sha256 in held:
            continue
        rid, state, bits = hit
        what = f"erased (receipt {rid})" if state == "held" else f"being erased ({rid})"
        out[o.locator] = f"near-duplicate of {what}: perceptual hash {bits} bits away"
    return out
