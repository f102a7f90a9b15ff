"""The catalog contract for photo groups (catalog/sql_groups.py), on SQLite and PostgreSQL:
near-duplicate images link to one group at record, exact bytes stay one image, lookups go
through the hash bands, erasure removes a group with its last image and says which."""

from __future__ import annotations

from dataclasses import replace

import pytest

from faceindex.catalog.base import Catalog
from faceindex.vision.phash import NEAR_BITS, hamming
from tests.contract.builders import OpenCatalog, face, new_source, outcome

pytestmark = pytest.mark.contract

BASE = 0x9F3C_51A2_7E08_C4D6


def flip(h: int, *bits: int) -> int:
    for b in bits:
        h ^= 1 << b
    return h


def _record(cat: Catalog, source_id: int, locator: str, content: str, phash: int | None) -> int:
    out = replace(outcome(source_id, locator, content, (face(len(content)),)), phash=phash)
    cat.record([out], "m")
    held = cat.images_holding([out.sha256 or ""])
    return held[out.sha256 or ""]


def _item_ids(cat: Catalog) -> dict[str, int]:
    rows = cat.query("SELECT id, locator FROM items")  # type: ignore[attr-defined]
    return {r["locator"]: int(r["id"]) for r in rows}


def test_near_duplicates_share_a_group_and_distinct_photos_do_not(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    a = _record(cat, src.id, "a.jpg", "a", BASE)
    # within the threshold, with the flipped bits spread over every band
    near = flip(BASE, 3, 20, 40, 60, 61, 62, 63, 1, 2, 5)
    assert hamming(BASE, near) == 10 <= NEAR_BITS
    b = _record(cat, src.id, "b.jpg", "b", near)
    far = BASE ^ 0xFFFF_FFFF_0000_0000  # 32 bits away
    c = _record(cat, src.id, "c.jpg", "c", far)
    d = _record(cat, src.id, "d.jpg", "d", None)  # no hash (e.g. decoded before v3): alone
    groups = cat.image_groups([a, b, c, d])
    assert groups[a] == groups[b] == a  # the group is numbered by its first image
    assert len({groups[a], groups[c], groups[d]}) == 3
    assert cat.count_groups() == 3
    assert cat.group_images([groups[a]]) == {groups[a]: [a, b]}
    assert cat.near_images(BASE) == [(a, 0), (b, 10)]
    assert cat.near_images(BASE, max_bits=4) == [(a, 0)]
    assert cat.image_hashes([a, d]) == {a: BASE}


def test_signed_storage_keeps_high_bit_hashes(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    top = (1 << 63) | 0x1234
    a = _record(cat, src.id, "a.jpg", "a", top)
    b = _record(cat, src.id, "b.jpg", "b", flip(top, 63))  # one bit: the sign bit
    assert cat.image_hashes([a]) == {a: top}
    assert cat.image_groups([a, b])[b] == a


def test_a_new_image_joins_its_nearest_group_and_groups_never_merge(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    low = 0x0000_0000_0000_0000
    high = flip(low, *range(0, 64, 4))  # 16 bits away: two groups
    a = _record(cat, src.id, "a.jpg", "a", low)
    b = _record(cat, src.id, "b.jpg", "b", high)
    between = flip(low, *range(0, 24, 4))  # 6 from low, 10 from high
    c = _record(cat, src.id, "c.jpg", "c", between)
    groups = cat.image_groups([a, b, c])
    assert groups[c] == groups[a] != groups[b]
    assert cat.count_groups() == 2


def test_group_locations_list_every_location_of_every_image(cat: Catalog) -> None:
    one = cat.add_source(new_source("one"))
    two = cat.add_source(new_source("two"))
    a = _record(cat, one.id, "orig.jpg", "orig", BASE)
    b = _record(cat, two.id, "q60.jpg", "q60", flip(BASE, 7))
    again = _record(cat, two.id, "copy-of-orig.jpg", "orig", BASE)  # same bytes: same image
    assert again == a
    g = cat.image_groups([a])[a]
    locs = cat.group_locations([g])[g]
    assert [(p.source, p.locator, p.image_id) for p in locs] == [
        ("one", "orig.jpg", a),
        ("two", "q60.jpg", b),
        ("two", "copy-of-orig.jpg", a),
    ]
    assert all(p.ingested_at for p in locs)


def test_erasing_a_source_keeps_the_group_while_another_source_holds_an_image(
    cat: Catalog,
) -> None:
    one = cat.add_source(new_source("one"))
    two = cat.add_source(new_source("two"))
    a = _record(cat, one.id, "orig.jpg", "orig", BASE)
    b = _record(cat, two.id, "small.jpg", "small", flip(BASE, 9, 33))
    g = cat.image_groups([a])[a]
    erased = cat.delete_source(one.id)
    assert erased.image_ids == (a,)
    assert erased.groups == (g,) and erased.groups_removed == ()
    assert cat.group_images([g]) == {g: [b]}
    assert [p.source for p in cat.group_locations([g])[g]] == ["two"]
    erased = cat.delete_source(two.id)
    assert erased.groups == (g,) and erased.groups_removed == (g,)
    assert cat.count_groups() == 0 and cat.group_images([g]) == {}


def test_erasing_images_and_items_names_the_groups(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    a = _record(cat, src.id, "a.jpg", "a", BASE)
    b = _record(cat, src.id, "b.jpg", "b", flip(BASE, 1))
    c = _record(cat, src.id, "c.jpg", "c", ~BASE & ((1 << 64) - 1))
    ga, gc = cat.image_groups([a])[a], cat.image_groups([c])[c]
    erased = cat.delete_images([a, c])
    assert erased.groups == tuple(sorted({ga, gc})) and erased.groups_removed == (gc,)
    assert cat.group_images([ga]) == {ga: [b]}
    erased = cat.delete_items([_item_ids(cat)["b.jpg"]])
    assert erased.image_ids == (b,) and erased.groups_removed == (ga,)
    assert cat.count_groups() == 0


def test_a_v4_catalog_upgrades_with_one_group_per_image(reopen: OpenCatalog) -> None:
    old = reopen()
    src = old.add_source(new_source())
    a = _record(old, src.id, "a.jpg", "a", BASE)
    b = _record(old, src.id, "b.jpg", "b", BASE)
    with old.transaction(bump=False) as tx:  # type: ignore[attr-defined]
        for statement in (  # back to the v4 schema, images and all
            "DROP TABLE reviews",  # v6, after the photo groups' v5
            "DROP INDEX images_group",
            *(f"DROP INDEX images_phash_b{i}" for i in range(4)),
            "ALTER TABLE images DROP COLUMN group_id",
            *(f"ALTER TABLE images DROP COLUMN phash_b{i}" for i in range(4)),
            "ALTER TABLE images DROP COLUMN phash",
            "DROP TABLE photo_groups",
            "UPDATE schema_version SET version = 4",  # v5 is the photo groups
        ):
            tx.execute(statement)
    old.close()
    upgraded = reopen()
    assert upgraded.image_groups([a, b]) == {a: a, b: b}
    assert upgraded.count_groups() == 2 and upgraded.image_hashes([a, b]) == {}
    c = _record(upgraded, src.id, "c.jpg", "c", BASE)  # unhashed old images match nothing
    assert upgraded.image_groups([c]) == {c: c}
