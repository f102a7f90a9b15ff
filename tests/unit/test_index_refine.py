"""The IVF kind's RAM tier (index/refine.py): refine codes built at training, kept on add,
dropped with deletes and compaction, persisted, repaired after a crash; and the exact rows
read per query fall from ``rerank`` to ``refine_exact``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import ConfigError
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_ivf import IvfStore
from faceindex.index.faiss_options import FaissOptions
from faceindex.index.memory import MemoryIndex

pytestmark = pytest.mark.unit

DIM = 128


def gallery(
    n_people: int, per: int = 4, seed: int = 0, start: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """People ~0.8 apart, their photos ~0.35 apart (dlib-like)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.8 / np.sqrt(2 * DIM), (n_people, DIM))
    noise = rng.normal(0, 0.35 / np.sqrt(2 * DIM), (n_people * per, DIM))
    vecs = (np.repeat(centres, per, 0) + noise).astype(np.float32)
    return np.arange(start, start + n_people * per, dtype=np.int64), vecs


def options(**kw: object) -> FaissOptions:
    base = {"kind": "ivf", "train_min": 500, "nlist": 16, "nprobe": 16, "refine_rerank": 600}
    base["tier"] = "on"  # whatever the RAM of the machine running the tests
    return FaissOptions.from_dict({**base, **kw})


def store(index: FaissIndex) -> IvfStore:
    s = index._store
    assert isinstance(s, IvfStore)
    return s


def refine_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("ivf.refine.*"))


@pytest.mark.parametrize("huge", [False, True])
def test_codes_are_built_at_training_and_persist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, huge: bool
) -> None:
    """``huge``: the codes and the id table in huge-page maps, as at scale."""
    if huge:
        from faceindex.index import hugepages

        monkeypatch.setattr(hugepages, "HUGE_MIN", 0)
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options())
    index.add(ids, vecs)
    index.save()
    assert index.kind == "ivf-pq"
    s = store(index)
    assert s.refine is not None and s.refine.rows == len(ids) and s.refine.code_size == 40
    assert refine_files(tmp_path) == ["ivf.refine.1.0.codes", "ivf.refine.1.faiss"]
    assert index.stats().details["refine"] == "pca"  # the default: 40 B at 128-d
    assert index.stats().details["refine_exact"] == 40  # its own number of exact reads
    before = index.search(vecs[:50], 10)
    index.close()
    again = FaissIndex(tmp_path, DIM, options=options())
    assert store(again).refine is not None
    np.testing.assert_array_equal(again.search(vecs[:50], 10)[1], before[1])
    more_ids, more = gallery(100, seed=4, start=5000)
    again.add(more_ids, more)  # the codes array grows (a new map, when huge)
    assert again.search(more[:3], 1)[1][:, 0].tolist() == more_ids[:3].tolist()
    within = more_ids[::2]
    got = again.search(more[::2][:5] + np.float32(0.001), 3, within=within)[1]
    assert got[:, 0].tolist() == within[:5].tolist()


def test_the_tier_reads_only_refine_exact_rows_and_keeps_recall(tmp_path: Path) -> None:
    ids, vecs = gallery(300)
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    index = FaissIndex(tmp_path, DIM, options=options(refine_exact=40))
    index.add(ids, vecs)
    index.save()
    s = store(index)
    read: list[int] = []
    vectors = s.raw.vectors
    s.raw.vectors = lambda slots: (read.append(slots.size), vectors(slots))[1]  # type: ignore[method-assign]
    probes = vecs[::7] + np.float32(0.01)
    got = index.search(probes, 10)
    assert read == [len(probes) * 40]  # one read: refine_exact rows per query, not rerank
    want = oracle.search(probes, 10)
    hits = sum(len(set(g) & set(w)) for g, w in zip(got[1], want[1], strict=True))
    assert hits / want[1].size >= 0.97
    np.testing.assert_allclose(got[0][:, 0], want[0][:, 0], atol=1e-4)  # distances exact
    off = FaissIndex(tmp_path, DIM, options=options(refine="none", rerank=200))
    raw_off = store(off).raw
    read.clear()
    vectors_off = raw_off.vectors
    raw_off.vectors = lambda slots: (read.append(slots.size), vectors_off(slots))[1]  # type: ignore[method-assign]
    off.search(probes, 10)
    assert read == [len(probes) * 200]


def test_added_faces_get_codes_deleted_ones_never_come_back_and_compaction_drops_them(
    tmp_path: Path,
) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options())
    index.add(ids, vecs)
    index.save()
    new_ids, new = gallery(20, seed=3, start=10_000)
    index.add(new_ids, new)
    assert store(index).refine.rows == len(ids) + len(new_ids)  # type: ignore[union-attr]
    d, found = index.search(new, 1)
    np.testing.assert_array_equal(found[:, 0], new_ids)
    np.testing.assert_allclose(d[:, 0], 0, atol=1e-3)
    gone = ids[:300]
    index.remove(gone)
    assert not np.isin(index.search(vecs[:300], 10)[1], gone).any()
    index.save()  # 300 of 1280 codes stale: compacts by itself
    s = store(index)
    assert s.raw.generation == 1 and s.refine is not None
    assert refine_files(tmp_path) == ["ivf.refine.1.1.codes", "ivf.refine.1.faiss"]
    assert s.refine.rows == len(ids) - 300 + len(new_ids)
    index.close()
    again = FaissIndex(tmp_path, DIM, options=options())
    d, found = again.search(new, 1)
    np.testing.assert_array_equal(found[:, 0], new_ids)
    assert not np.isin(again.search(vecs[:300], 10)[1], gone).any()
    keep_ids, keep = ids[300:], vecs[300:]
    np.testing.assert_array_equal(again.search(keep[:40], 1)[1][:, 0], keep_ids[:40])


def test_a_codes_file_cut_short_by_a_crash_is_completed_from_the_raw_vectors(
    tmp_path: Path,
) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options())
    index.add(ids, vecs)
    index.close()
    codes = tmp_path / "ivf.refine.1.0.codes"
    whole = codes.read_bytes()
    with open(codes, "r+b") as fh:
        fh.truncate(32 * 1000)
    again = FaissIndex(tmp_path, DIM, options=options())
    s = store(again)
    assert s.refine is not None and s.refine.rows == len(ids)
    assert codes.read_bytes() == whole  # the same codes, encoded again
    np.testing.assert_array_equal(again.search(vecs[1100:], 1)[1][:, 0], ids[1100:])


def test_retraining_without_the_tier_drops_its_files(tmp_path: Path) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options())
    index.add(ids, vecs)
    index.close()
    assert refine_files(tmp_path)
    off = FaissIndex(tmp_path, DIM, options=options(refine="none"))
    off.rebuild(iter([(ids, vecs)]))
    assert refine_files(tmp_path) == [] and store(off).refine is None
    np.testing.assert_array_equal(off.search(vecs[:20], 1)[1][:, 0], ids[:20])


@pytest.mark.parametrize("kind,size", [("sq4", 64), ("sq8", 128), ("pq", 16)])
def test_other_codecs(tmp_path: Path, kind: str, size: int) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options(refine=kind, refine_m=16))
    index.add(ids, vecs)
    index.save()
    assert store(index).refine.code_size == size  # type: ignore[union-attr]
    np.testing.assert_array_equal(index.search(vecs[:40], 1)[1][:, 0], ids[:40])


def test_auto_uses_the_tier_only_once_the_raw_file_outgrows_a_quarter_of_the_ram(
    tmp_path: Path,
) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options(tier="auto"))
    index.add(ids, vecs)
    index.save()
    s = store(index)
    assert s.refine is not None  # built and kept all the same
    assert index.stats().details["tier_in_use"] is False  # 0.6 MB of raw vectors: cached
    assert s._tier() is None
    s.opts = options(tier="auto", refine="none")
    assert s._tier() is None


@pytest.mark.parametrize(("kind", "exact"), [("pca", 40), ("pq", 20), ("sq8", 40)])
def test_a_small_restricted_set_is_scanned_on_its_codes_with_exact_distances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, exact: int
) -> None:
    """The set's codes rank it and the best are read exactly: refine_exact of them, twice
    that for a kind whose ranking elsewhere averages in the fast-scan distance (pq). The
    scan is split over the cores in shares (small ones here) and merged."""
    from faceindex.index import refine

    monkeypatch.setattr(refine, "SCAN_SHARE_MIN", 16)
    ids, vecs = gallery(300)
    opts = options(rerank=50, refine_exact=exact, set_scan_max=500, refine=kind)
    index = FaissIndex(tmp_path, DIM, options=opts)
    index.add(ids, vecs)
    index.save()
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    within = ids[::3]
    assert 50 < len(within) <= store(index).set_scan_max
    probes = vecs[1::3][:30] + np.float32(0.01)
    s = store(index)
    read: list[int] = []
    vectors = s.raw.vectors
    s.raw.vectors = lambda slots: (read.append(slots.size), vectors(slots))[1]  # type: ignore[method-assign]
    got_d, got_i = index.search(probes, 10, within=within)
    assert read == [len(probes) * 40]  # refine_exact rows, 2 x that for pq (20 here)
    want_d, want_i = oracle.search(probes, 10, within=within)
    assert np.isin(got_i, within).all()
    hits = sum(len(set(g) & set(w)) for g, w in zip(got_i, want_i, strict=True))
    assert hits / want_i.size >= 0.98
    np.testing.assert_allclose(got_d[:, 0], want_d[:, 0], atol=1e-4)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_pca_code_distances_are_those_of_the_decoded_codes_in_either_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metric: str
) -> None:
    """The tier scores pca codes in the PCA's own space (rotated, shifted query, table
    lookups). That must order candidates as the distance (L2) or inner product to the
    decoded vectors in the full space does: the two may differ by one constant per query,
    nothing else."""
    from faceindex.index import refine
    from faceindex.index.refine import RefineCodes

    _, vecs = gallery(300)
    if metric == "ip":
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    codes = RefineCodes.trained(tmp_path, "pca", 0, metric, vecs, 1, 0)  # type: ignore[arg-type]
    assert codes.code_size == 40
    enc = codes.codec.sa_encode(vecs)
    q = vecs[::50] + np.float32(0.01)
    cand = enc[np.random.default_rng(1).integers(0, len(vecs), (len(q), 200))]
    got = codes._distances(q, cand, metric)  # type: ignore[arg-type]
    back = codes.codec.sa_decode(cand.reshape(-1, 40)).reshape(len(q), 200, DIM)
    want = (
        ((back - q[:, None]) ** 2).sum(-1) if metric == "l2" else np.einsum("nmd,nd->nm", back, q)
    )
    gap = got - want
    assert np.ptp(gap, axis=1).max() < 1e-4 * np.abs(want).max()  # one constant per query
    # the restricted scan (FAISS's PQ inside the pre-transform, the query rotated) agrees
    codes.put(np.arange(len(vecs)), vecs)
    mine = codes._distances(q, np.broadcast_to(enc, (len(q), *enc.shape)), metric)  # type: ignore[arg-type]
    face_ids = np.arange(len(vecs)) + 1000  # face id i + 1000 at raw row i

    def rows(ids: np.ndarray) -> np.ndarray:
        return np.where(ids % 7 == 0, -1, ids - 1000)  # every 7th gone from the map

    gone = (np.arange(len(vecs)) + 1000) % 7 == 0
    mine = np.where(gone[None, :], np.inf if metric == "l2" else -np.inf, mine)
    order = np.argsort(mine if metric == "l2" else -mine, axis=1, kind="stable")
    for share in (1 << 20, 100):  # one share, then three merged
        monkeypatch.setattr(refine, "SCAN_SHARE_MIN", share)
        got = codes.scan(q, face_ids[::-1].copy(), 5, rows)
        assert not np.isin(got, face_ids[gone]).any()
        np.testing.assert_array_equal(got[:, 0] - 1000, order[:, 0])
        assert (np.sort(got - 1000, axis=1) == np.sort(order[:, :5], axis=1)).mean() > 0.95


def test_the_tier_alone_is_retrained_with_a_new_kind_and_the_lists_kept(tmp_path: Path) -> None:
    ids, vecs = gallery(300)
    index = FaissIndex(tmp_path, DIM, options=options(refine="pq"))
    index.add(ids, vecs)
    index.save()
    index.remove(ids[:5])  # deleted faces get no code and never come back
    index.save()
    lists = (tmp_path / "ivf.faiss").stat().st_mtime_ns
    before = store(index).refine.gen  # type: ignore[union-attr]
    index.close()
    other = FaissIndex(tmp_path, DIM, options=options(refine="pq"))  # another process
    pca = FaissIndex(tmp_path, DIM, options=options(refine="pca"))
    assert store(pca).refine.kind == "pq"  # type: ignore[union-attr]  # the stored kind rules
    assert pca.retrain_refine() == len(ids) - 5
    s = store(pca)
    assert s.refine is not None and s.refine.kind == "pca" and s.refine.gen == before + 1
    assert refine_files(tmp_path) == [
        f"ivf.refine.{before + 1}.0.codes",
        f"ivf.refine.{before + 1}.faiss",
    ]
    assert (tmp_path / "ivf.faiss").stat().st_mtime_ns == lists
    assert other.replaced_on_disk()  # it must read the new codes before it adds any
    got = pca.search(vecs[:40], 1)[1][:, 0]
    np.testing.assert_array_equal(got[5:], ids[5:40])
    assert not np.isin(got, ids[:5]).any()
    pca.close()
    again = FaissIndex(tmp_path, DIM, options=options(refine="pca"))
    assert store(again).refine.kind == "pca"  # type: ignore[union-attr]
    np.testing.assert_array_equal(again.search(vecs[5:40], 1)[1][:, 0], ids[5:40])


def test_reading_ahead_asks_for_the_rows_early_and_changes_no_answer(tmp_path: Path) -> None:
    """With the tier in use a search of a few queries scans in two calls: the nearest
    quarter of the probed lists, whose best rows by the refine codes are asked of the
    disk, then the rest. The answers are those of the single scan; most rows finally read
    were asked for early."""
    ids, vecs = gallery(400)
    index = FaissIndex(tmp_path, DIM, options=options(nprobe=16))
    index.add(ids, vecs)
    index.save()
    s = store(index)
    asked: list[np.ndarray] = []
    read: list[np.ndarray] = []
    prefetch, vectors = s.raw.prefetch, s.raw.vectors
    s.raw.prefetch = lambda slots: (asked.append(slots.copy()), prefetch(slots))[1]  # type: ignore[method-assign]
    s.raw.vectors = lambda slots: (read.append(slots.copy()), vectors(slots))[1]  # type: ignore[method-assign]
    q = vecs[2::9][:40] + np.float32(0.001)
    ahead_batch = index.search(q, 10)
    ahead_single = [index.search(row[None, :], 10) for row in q]
    assert len(asked) == len(q)  # each single query; the batch of 40 scans in one call
    assert all(a.shape == (1, 40) for a in asked)
    early = [set(a[a >= 0].tolist()) for a in asked]
    final = [set(r.ravel().tolist()) for r in read[1:]]
    known = np.mean([len(e & f) / len(f) for e, f in zip(early, final, strict=True)])
    assert known > 0.5  # 16 lists, the first 4 scanned ahead
    s.opts = options(nprobe=16, read_ahead=0)
    asked.clear()
    plain = index.search(q, 10)
    assert not asked  # off: one scan, nothing read ahead
    np.testing.assert_array_equal(ahead_batch[1], plain[1])
    np.testing.assert_allclose(ahead_batch[0], plain[0], atol=1e-5)
    np.testing.assert_array_equal(np.vstack([i for _, i in ahead_single]), plain[1])
    with pytest.raises(ConfigError, match="read_ahead"):
        options(read_ahead=1.0)


def test_the_lists_path_scores_the_set_s_faces_in_the_probed_lists_and_follows_changes(
    tmp_path: Path,
) -> None:
    """restricted=lists: each face's list (index/id_lists.py) picks the set's faces in the
    probed lists, only their codes are scored. With every list probed that is the code scan
    of the whole set; with a few, only faces of those lists come back. The table follows
    adds, re-adds and removals, and stays right through a compaction."""
    from faceindex.index.id_lists import ANY, NONE

    ids, vecs = gallery(400)
    index = FaissIndex(tmp_path, DIM, options=options(restricted="lists"))
    index.add(ids, vecs)
    index.save()
    s = store(index)
    within = ids[1::2]
    q = vecs[2::9][:30] + np.float32(0.001)
    listed = index.search(q, 10, within=within)
    s.opts = options(restricted="codes")
    np.testing.assert_array_equal(listed[1], index.search(q, 10, within=within)[1])
    listing = s._listing
    assert listing is not None
    _, where = s.index.quantizer.search(vecs, 1)
    np.testing.assert_array_equal(listing.lists_of(ids), where[:, 0])
    assert (listing.lists_of(np.array([0, ids[-1] + 1, -5])) == NONE).all()
    # a few lists probed: every face returned is in one of the query's lists
    s.opts = options(restricted="lists", nprobe=2)
    got = index.search(q, 10, within=within)[1]
    _, probed = s.index.quantizer.search(q, 2)
    for row in range(len(q)):
        found = got[row][got[row] >= 0]
        assert len(found) and np.isin(found, within).all()
        assert np.isin(listing.lists_of(found), probed[row]).all()
    # follows adds, re-adds and removals without being made anew
    more, extra = gallery(20, seed=7, start=int(ids[-1]) + 1)
    index.add(more, extra)
    assert s._listing is listing
    _, where = s.index.quantizer.search(extra, 1)
    np.testing.assert_array_equal(listing.lists_of(more), where[:, 0])
    moved = vecs[:1] + np.float32(5.0)  # far away: another list
    index.add(ids[:1], moved)
    assert listing.lists_of(ids[:1])[0] in (ANY, s.index.quantizer.search(moved, 1)[1][0, 0])
    index.remove(ids[1:3])
    assert (listing.lists_of(ids[1:3]) == NONE).all()
    assert not np.isin(index.search(q, 10, within=ids[:8])[1], ids[1:3]).any()
    # a compaction renumbers the rows and drops the stale codes, not the ids' lists
    s.compact()
    s.opts = options(restricted="lists")
    after = index.search(q, 10, within=within)[1]
    assert s._listing is not None
    np.testing.assert_array_equal(s._listing.lists_of(more), where[:, 0])
    assert not np.isin(after, ids[1:3]).any() and np.isin(after[after >= 0], within).all()
    assert s._listing.lists_of(ids[:1])[0] == s.index.quantizer.search(moved, 1)[1][0, 0]


def test_the_lists_path_scans_the_whole_set_for_a_query_whose_lists_hold_too_little(
    tmp_path: Path,
) -> None:
    """A set far from the query (none of its faces in the probed list) still gives the
    set's nearest, as the code scan of the whole set does; a set none of whose ids is held
    gives nothing."""
    ids, vecs = gallery(400)
    vecs[800:, 0] += 3.0  # the second half far from the first
    index = FaissIndex(tmp_path, DIM, options=options(restricted="lists", nprobe=1))
    index.add(ids, vecs)
    index.save()
    far = ids[800:]
    q = vecs[:3] + np.float32(0.001)
    got = index.search(q, 10, within=far)[1]
    oracle = MemoryIndex(DIM)
    oracle.add(ids, vecs)
    np.testing.assert_array_equal(got[:, :3], oracle.search(q, 3, within=far)[1])
    gone = np.arange(10_000, 10_500, dtype=np.int64)  # past the rerank, none held
    assert (index.search(q, 10, within=gone)[1] == -1).all()
