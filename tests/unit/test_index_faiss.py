"""FAISS index kinds: automatic switch to IVF, retraining, compaction, crash recovery, URLs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import ConfigError, StorageError
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_options import FaissOptions, auto_nlist
from faceindex.index.maintenance import Maintainable
from faceindex.index.memory import MemoryIndex
from faceindex.index.rawstore import RawStore

pytestmark = pytest.mark.unit

DIM = 128


def people(
    n_people: int, per: int = 4, seed: int = 0, start: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.05, (n_people, DIM))
    vecs = np.repeat(centres, per, 0) + rng.normal(0, 0.02, (n_people * per, DIM))
    return np.arange(start, start + n_people * per, dtype=np.int64), vecs.astype(np.float32)


def small_ivf(**kw: object) -> FaissOptions:
    base = {"kind": "ivf", "train_min": 400, "nlist": 8, "nprobe": 8, "rerank": 200}
    return FaissOptions.from_dict({**base, **kw})


def test_auto_switches_to_ivf_past_threshold_and_keeps_results(tmp_path: Path) -> None:
    opts = FaissOptions(ivf_threshold=600, train_min=400, nlist=8, nprobe=8, rerank=200)
    index = FaissIndex(tmp_path, DIM, options=opts)
    oracle = MemoryIndex(DIM)
    ids, vecs = people(100)
    index.add(ids, vecs)
    oracle.add(ids, vecs)
    index.save()
    assert index.kind == "flat" and index.capabilities.exact
    more_ids, more = people(100, seed=1, start=10_000)
    index.add(more_ids, more)
    oracle.add(more_ids, more)
    index.save()  # 800 >= 600: converts, trains
    assert index.kind == "ivf-pq" and not index.capabilities.exact
    assert not (tmp_path / "faces.faiss").exists()
    assert index.stats().trained_on == 800
    got, want = index.search(vecs[:20], 5), oracle.search(vecs[:20], 5)
    np.testing.assert_allclose(got[0], want[0], atol=2e-3)
    index.close()
    again = FaissIndex(tmp_path, DIM)  # options come back from index.json
    assert again.kind == "ivf-pq" and again.count() == 800


def test_retrains_when_gallery_outgrows_training(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf(retrain_factor=2.0))
    ids, vecs = people(120)
    index.add(ids, vecs)
    index.save()
    assert index.stats().trained_on == 480
    more_ids, more = people(150, seed=2, start=5000)
    index.add(more_ids, more)
    assert index.stats().needs_retrain  # 1080 > 2 * 480
    index.save()
    st = index.stats()
    assert st.trained_on == 1080 and not st.needs_retrain


def test_readd_and_delete_leave_garbage_that_compact_drops(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf())
    ids, vecs = people(120)
    index.add(ids, vecs)
    index.save()
    index.add(ids[:30], vecs[:30] + 0.01)
    index.remove(ids[30:40])
    st = index.stats()
    assert st.garbage == 40 and st.count == 470
    assert index.compact() == 40
    assert index.stats().garbage == 0
    _, found = index.search(vecs[30:40], 10)
    assert not np.isin(found, ids[30:40]).any()
    assert len(list(tmp_path.glob("vectors.*.f32"))) == 1


def test_disk_lists_survive_an_unclean_shutdown(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf(storage="disk"))
    ids, vecs = people(120)
    index.add(ids, vecs)
    index.save()
    index.remove(ids[:8])  # changes the on-disk lists in place; never saved
    assert (tmp_path / "ivf.dirty").exists()
    del index  # a crash: no save, no close
    again = FaissIndex(tmp_path, DIM)
    assert again.count() == 480  # the map as last saved; the lists were re-filled from it
    d, i = again.search(vecs[:8], 1)
    assert (i[:, 0] == ids[:8]).all() and (d[:, 0] < 1e-3).all()


def test_untrained_ivf_scans_exactly(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf(train_min=10_000))
    ids, vecs = people(50)
    index.add(ids, vecs)
    index.save()
    assert index.capabilities.exact and index.stats().trained_on == 0
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    got, want = index.search(vecs[:10], 7), oracle.search(vecs[:10], 7)
    np.testing.assert_allclose(got[0], want[0], atol=2e-3)


def test_rebuild_from_batches_and_kind_flag(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf())
    assert isinstance(index, Maintainable)
    ids, vecs = people(150)
    batches = [(ids[s : s + 100], vecs[s : s + 100]) for s in range(0, len(ids), 100)]
    assert index.rebuild(batches, kind="flat") == 600
    assert index.kind == "flat"
    assert index.rebuild(batches, kind="ivf") == 600
    assert index.kind == "ivf-pq" and index.stats().trained_on == 600


def test_url_parameters(tmp_path: Path) -> None:
    index = FaissIndex.from_url(f"faiss://{tmp_path}?kind=ivf&nprobe=4&rerank=50", dim=DIM)
    assert index.options.kind == "ivf" and index.options.nprobe == 4
    with pytest.raises(ConfigError, match="unknown faiss URL parameter"):
        FaissIndex.from_url(f"faiss://{tmp_path}?nprobes=4", dim=DIM)
    with pytest.raises(ConfigError):
        FaissIndex.from_url(f"faiss://{tmp_path}?nprobe=many", dim=DIM)
    with pytest.raises(ConfigError):
        FaissOptions(kind="hnsw")  # type: ignore[arg-type]


def test_auto_nlist_grows_with_sqrt_n() -> None:
    assert auto_nlist(1_000_000) == 2048
    assert auto_nlist(10_000_000) == 8192
    assert auto_nlist(0) == 1


def test_rawstore_map_is_the_commit_point(tmp_path: Path) -> None:
    raw = RawStore(tmp_path, 4)
    raw.append(np.array([5, 9]), np.ones((2, 4), np.float32))
    raw.save()
    raw.append(np.array([12]), np.zeros((1, 4), np.float32))  # not saved: lost on reopen
    again = RawStore(tmp_path, 4)
    assert again.keys.tolist() == [5, 9] and again.rows == 2
    assert again.lookup(np.array([9, 12, 1])).tolist()[1:] == [-1, -1]
    (tmp_path / "vectors.0.f32").write_bytes(b"")
    with pytest.raises(StorageError, match="index build"):
        RawStore(tmp_path, 4)


def test_rawstore_row_table_follows_every_change(tmp_path: Path) -> None:
    """Dense ids are looked up in a table of one row per id of their range, which must
    agree with the sorted map through appends in and out of order, removals, a store grown
    sparse and dense again, compaction and a reopen."""
    raw = RawStore(tmp_path, 2)
    want: dict[int, int] = {}

    def put(ids: list[int]) -> None:
        start = raw.rows
        raw.append(np.array(ids), np.zeros((len(ids), 2), np.float32))
        want.update({i: start + n for n, i in enumerate(ids)})

    def check() -> None:
        probe = np.arange(-3, max(want) + 5)
        expect = [want.get(int(i), -1) for i in probe]
        assert raw.lookup(probe).tolist() == expect
        assert raw.lookup(probe.reshape(1, -1)).tolist() == [expect]

    put(list(range(10, 40)))
    check()
    assert raw._table is not None  # 30 ids over a range of 30
    put(list(range(40, 3000)))  # in order, past the table's capacity
    check()
    raw.remove(np.array([11, 12, 2999]))
    for i in (11, 12, 2999):
        del want[i]
    check()
    put([12, 5])  # out of order, one below the table's first id
    check()
    put([50_000])  # the range now 17x the ids: no table, binary search
    check()
    assert raw._table is None
    put(list(range(3000, 60_000)))  # dense again
    check()
    assert raw._table is not None
    raw.save()
    again = RawStore(tmp_path, 2)
    raw = again
    check()
    rows = raw.compact()
    assert rows > 0
    want = {int(k): n for n, k in enumerate(raw.keys)}
    check()


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_flat_few_query_path_matches_oracle(tmp_path: Path, metric: str) -> None:
    index = FaissIndex(tmp_path, DIM, metric, options=FaissOptions(kind="flat"))  # type: ignore[arg-type]
    oracle = MemoryIndex(DIM, metric)  # type: ignore[arg-type]
    ids, vecs = people(500)  # 2000 >= 64 * k: the thresholded top-k path
    index.add(ids * 3, vecs)
    oracle.add(ids * 3, vecs)
    index.remove(ids[:5] * 3)  # the cached id/norm arrays must follow removals
    oracle.remove(ids[:5] * 3)
    for q in (vecs[7:8], vecs[10:13]):  # 1 and 3 queries: the BLAS path
        got, want = index.search(q, 6), oracle.search(q, 6)
        np.testing.assert_allclose(got[0], want[0], atol=2e-3)
        assert (got[1][:, 0] == want[1][:, 0]).all()


@pytest.mark.parametrize("storage", ["ram", "disk"])
def test_many_lists_use_a_nested_quantizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: str
) -> None:
    """Past FLAT_MAX_LISTS lists (8192; 8 here) the coarse quantizer is an IVF over the
    centroids, trained by two-level k-means; probing every list still gives exact results,
    and the index survives a reopen (its centroid map is rebuilt) and deletes."""
    from faceindex.index import faiss_coarse

    monkeypatch.setattr(faiss_coarse, "FLAT_MAX_LISTS", 8)
    monkeypatch.setattr(faiss_coarse, "CENTROIDS_PER_GROUP", 4)
    index = FaissIndex(tmp_path, DIM, options=small_ivf(nlist=32, nprobe=32, storage=storage))
    oracle = MemoryIndex(DIM)
    ids, vecs = people(400)  # 1600 faces: enough to train 32 lists
    index.add(ids, vecs)
    oracle.add(ids, vecs)
    index.save()
    details = index.stats().details
    assert details["quantizer"] == "ivf8" and details["nlist"] == 32
    q = vecs[::37] + np.float32(0.001)
    got, want = index.search(q, 5), oracle.search(q, 5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    index.remove(want[1][:, 0])
    oracle.remove(want[1][:, 0])
    index.close()
    again = FaissIndex(tmp_path, DIM)
    assert again.stats().details["quantizer"] == "ivf8"
    got, want = again.search(q, 5), oracle.search(q, 5)
    np.testing.assert_array_equal(got[1], want[1])
    more_ids, more = people(20, seed=3, start=50_000)
    again.add(more_ids, more)  # placed through the nested quantizer after the reopen
    assert again.search(more[:3], 1)[1][:, 0].tolist() == more_ids[:3].tolist()
    again.close()


def test_raw_rows_across_page_edges_come_back_whole(tmp_path: Path) -> None:
    """Rows of 400 bytes straddle 4 KiB pages and the file ends mid-page: the read-ahead
    hints cover both pages of a row and stop at the end of the file."""
    store = RawStore(tmp_path, 100)
    vecs = np.random.default_rng(2).random((50, 100), dtype=np.float32)
    store.append(np.arange(1, 51), vecs)
    store.save()
    again = RawStore(tmp_path, 100)
    picks = np.array([50, 1, 11, 21, 31, 24])  # rows 10, 20 and 30 cross a page edge
    np.testing.assert_array_equal(again.vectors(again.lookup(picks)), vecs[picks - 1])


def test_restricted_ivf_search_same_with_bitmap_or_hash_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceindex.index import faiss_ivf

    index = FaissIndex(tmp_path, DIM, options=small_ivf(rerank=300))
    ids, vecs = people(300)
    index.add(ids * 3, vecs)  # sparse ids: bits between them stay clear
    index.save()
    # 600 ids, more than the re-rank, so the IVF scan filters; the ids above them, beyond
    # the bitmap's last byte, must stay out (probes come from both halves)
    within = ids[:600] * 3
    q = vecs[::25] + np.float32(0.001)
    by_bitmap = index.search(q, 8, within=within)
    monkeypatch.setattr(faiss_ivf, "BITMAP_MAX_BYTES", 0)
    by_set = index.search(q, 8, within=within)
    np.testing.assert_array_equal(by_bitmap[1], by_set[1])
    assert np.isin(by_bitmap[1], within).all()
    oracle = MemoryIndex(DIM)
    oracle.add(ids * 3, vecs)
    np.testing.assert_array_equal(by_bitmap[1], oracle.search(q, 8, within=within)[1])


def test_fastscan_splits_one_query_over_threads_with_the_batch_results(tmp_path: Path) -> None:
    """A single probe's lists are scanned by several threads (FAISS's automatic choice
    scans one query on one thread), built and reopened alike; the answers stay those of
    the batch search and of the exact oracle."""
    from faceindex.index.faiss_ivf import FASTSCAN_OVER_LISTS

    index = FaissIndex(tmp_path, DIM, options=small_ivf())
    ids, vecs = people(200)
    index.add(ids, vecs)
    index.save()
    assert type(index._store.index).__name__.endswith("FastScan")
    assert index._store.index.implem == FASTSCAN_OVER_LISTS
    index.close()
    again = FaissIndex(tmp_path, DIM, options=small_ivf())
    assert again._store.index.implem == FASTSCAN_OVER_LISTS
    q = vecs[::40] + np.float32(0.001)
    batch = again.search(q, 5)[1]
    singles = np.vstack([again.search(row[None, :], 5)[1] for row in q])
    np.testing.assert_array_equal(singles, batch)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    np.testing.assert_array_equal(batch, oracle.search(q, 5)[1])
    # a large fetch (the restricted filter's) is left to FAISS's own choice: merging the
    # threads' heaps would cost more than the split saves; near the same candidates either
    # way (ties of the 16-bit fast-scan distances may fall either side of the cut)
    from faceindex.index.faiss_coarse import search_params
    from faceindex.index.faiss_ivf import SPLIT_FETCH_MAX

    s = again._store
    params = search_params(s.index, s.nprobe)
    wide = s._scan(q[:3], SPLIT_FETCH_MAX + 1, params)[1]
    assert s.index.implem == 0
    narrow = s._scan(q[:3], 50, params)[1]
    assert s.index.implem == FASTSCAN_OVER_LISTS
    same = [len(set(w[:50]) & set(n)) for w, n in zip(wide, narrow, strict=True)]
    assert min(same) >= 45, same
    again.close()


def two_groups(n_people: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids and vectors of two groups of people far apart (a set of the first group's faces is
    nowhere near a query among the second's); and the first group's ids."""
    ids, vecs = people(2 * n_people)
    vecs[n_people * 4 :, 0] += 1.0
    return ids, vecs, ids[: n_people * 4]


@pytest.mark.parametrize("wide", [False, True])
def test_a_large_restricted_set_filters_the_unrestricted_scan_without_a_selector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    """``wide``: the fetch is past SPLIT_FETCH_MAX, so each core fetches it from its share of
    the lists and the set's best are picked from all of theirs: the same answer."""
    from faceindex.index import faiss_ivf

    if wide:
        monkeypatch.setattr(faiss_ivf, "SPLIT_FETCH_MAX", 8)
    index = FaissIndex(tmp_path, DIM, options=small_ivf(rerank=20))
    ids, vecs = people(400)
    index.add(ids, vecs)
    index.save()
    s = index._store
    assert isinstance(s, faiss_ivf.IvfStore)
    within = ids[::2]  # 800 of 1600: the best 60 of the whole scan hold ~30 of them
    assert s._filter_fetch(8, len(within)) == 76  # 2 x (20 + 4 sqrt 20)
    assert s._restricted_path(8, len(within)) == "filter"
    q = vecs[1::40] + np.float32(0.001)  # faces outside the set, their people's inside
    s.opts = small_ivf(rerank=20, restricted="selector")
    by_selector = index.search(q, 8, within=within)
    s.opts = small_ivf(rerank=20)

    def no_selector(ids: np.ndarray) -> None:
        raise AssertionError("the filter path built a selector")

    monkeypatch.setattr(s, "_selector", no_selector)
    got = index.search(q, 8, within=within)
    assert np.isin(got[1], within).all()
    # the set's best 20 by fast-scan distance either way, so the same answer
    np.testing.assert_array_equal(got[1], by_selector[1])
    np.testing.assert_allclose(got[0], by_selector[0], atol=1e-5)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    want = oracle.search(q, 8, within=within)[1]
    np.testing.assert_array_equal(got[1][:, :2], want[:, :2])  # each person's 2 in the set


@pytest.mark.parametrize("wide", [False, True])
def test_the_filter_sends_a_query_whose_fetch_missed_the_set_to_the_selector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    from faceindex.index import faiss_ivf

    if wide:
        monkeypatch.setattr(faiss_ivf, "SPLIT_FETCH_MAX", 8)
    index = FaissIndex(tmp_path, DIM, options=small_ivf(rerank=20))
    ids, vecs, first = two_groups(200)
    index.add(ids, vecs)
    index.save()
    s = index._store
    assert s._restricted_path(8, len(first)) == "filter"  # half the gallery
    built: list[int] = []
    selector = s._selector
    monkeypatch.setattr(s, "_selector", lambda w: (built.append(len(w)), selector(w))[1])
    near, far = vecs[3:4] + np.float32(0.001), vecs[-8::4] + np.float32(0.001)
    q = np.vstack([near, far])  # one query beside the set, two in the other group
    monkeypatch.setattr(faiss_ivf, "FILTER_BATCH", 100)  # the queries fetched one by one
    got_d, got_i = index.search(q, 8, within=first)
    assert built == [len(first)]  # once, for the two far queries only
    assert (got_i >= 0).all() and np.isin(got_i, first).all()  # not left short
    s.opts = small_ivf(rerank=20, restricted="selector")
    want_d, want_i = index.search(q, 8, within=first)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, atol=1e-5)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    np.testing.assert_array_equal(got_i[0, :4], oracle.search(near, 4, within=first)[1][0])


@pytest.mark.parametrize("path", ["filter", "selector"])
def test_a_set_s_bitmap_serves_only_an_equal_set(tmp_path: Path, path: str) -> None:
    """The last sets' bitmaps are kept for the next search of the same set; another set of
    the same size and range must never be answered through it."""
    index = FaissIndex(tmp_path, DIM, options=small_ivf(rerank=20, restricted=path))
    ids, vecs = people(400)
    index.add(ids, vecs)
    index.save()
    s = index._store
    evens, odds = ids[::2].copy(), ids[1::2].copy()
    q = vecs[::37] + np.float32(0.001)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    for within in (evens, odds, evens, odds.copy()):
        got = index.search(q, 8, within=within)[1]
        assert np.isin(got, within).all()
        np.testing.assert_array_equal(got[:, :1], oracle.search(q, 1, within=within)[1])
    assert len(s._bits._made) == 2  # one bitmap each, reused


def test_the_code_scan_takes_larger_sets_where_ids_are_looked_up_directly(tmp_path: Path) -> None:
    """Dense ids (the id map's direct table) make the code scan ~10x cheaper an id, so it
    takes sets up to 1/6 of the codes a search visits, not 1/32 as with sparse ids."""
    from faceindex.index.faiss_ivf import SET_SCAN_SHARE, SET_SCAN_SHARE_DIRECT

    ids, vecs = people(400)
    limits = {}
    for spread in (1, 100):
        index = FaissIndex(tmp_path / str(spread), DIM, options=small_ivf(tier="on"))
        index.add(ids * spread, vecs)
        index.save()
        s = index._store
        visited = len(ids) * s.nprobe / s.index.nlist
        assert s.raw.direct == (spread == 1)
        limits[spread] = s.set_scan_max / visited
        index.close()
    assert limits[1] == pytest.approx(SET_SCAN_SHARE_DIRECT, rel=0.01)
    assert limits[100] == pytest.approx(SET_SCAN_SHARE, rel=0.01)


@pytest.mark.parametrize("two_level", [False, True])
def test_membership_by_binary_search_in_one_or_two_levels(
    monkeypatch: pytest.MonkeyPatch, two_level: bool
) -> None:
    """The filter's candidates tested against a sorted set without a bitmap: -1 (none) and
    ids below, between and past the set's are out; the first, last and every other in."""
    from faceindex.index import faiss_ivf

    if two_level:
        monkeypatch.setattr(faiss_ivf, "MEMBER_TWO_LEVEL", 10)
        monkeypatch.setattr(faiss_ivf, "MEMBER_BLOCK", 8)
    rng = np.random.default_rng(4)
    ids = np.sort(rng.choice(50_000, 3_000, replace=False)).astype(np.int64)
    cand = np.concatenate(
        [rng.integers(-1, 50_010, 4_000), rng.choice(ids, 2_000), ids[[0, -1]], [-1, 0, 50_009, 7]]
    ).reshape(-1, 2)
    got = faiss_ivf._sorted_members(ids, cand)
    np.testing.assert_array_equal(got, np.isin(cand, ids) & (cand >= 0))
    assert got.shape == cand.shape and got.sum() >= 2_000


def test_restricted_path_rule_and_forced_paths(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path, DIM, options=small_ivf(rerank=20, tier="on", set_scan_max=300))
    ids, vecs = people(400)
    index.add(ids, vecs)
    index.save()
    s = index._store
    # codes up to set_scan_max with the tier; the set's faces in the probed lists (dense
    # ids) up to a third of the 1600 codes visited; then filter once the gallery's best
    # holding the tier's refine_rerank (1000) of the set fit in 1/4 of them
    assert s._restricted_path(8, 300) == "codes"
    assert s._restricted_path(8, 301) == "lists"
    assert s._restricted_path(8, 533) == "lists"
    assert s._restricted_path(8, 534) == "selector"
    assert s._restricted_path(8, 1600) == "selector"  # 1000 + 4 sqrt 1000 > 400
    assert s._filter_fetch(8, 1200) == 1502
    s.opts = small_ivf(rerank=20, tier="on", refine_rerank=40, set_scan_max=200)
    assert s._filter_fetch(8, 1200) == 88 and s._restricted_path(8, 1200) == "filter"
    assert s._restricted_path(8, 250) == "lists"  # the filter would fetch 418: over 400
    q = vecs[1::50] + np.float32(0.001)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    within = ids[:1200]
    want = oracle.search(q, 8, within=within)[1]
    for path in ("codes", "lists", "filter", "selector", "batch"):
        # 100 exact reads as with pq: codes trained on 1600 faces rank coarsely
        s.opts = small_ivf(rerank=20, tier="on", restricted=path, refine_exact=100)
        assert s._restricted_path(8, 301) == path
        np.testing.assert_array_equal(index.search(q, 8, within=within)[1], want)
    s.opts = small_ivf(rerank=20, refine="none", restricted="codes")
    s.refine = None
    with pytest.raises(ConfigError, match="refine codes"):
        index.search(q, 8, within=within)
    with pytest.raises(ConfigError, match="restricted"):
        small_ivf(restricted="bitmap")
