"""One VectorIndex contract, run on every backend against the MemoryIndex oracle.

Backends: memory (the oracle itself), faiss exact (flat), faiss IVF-PQ in RAM and on disk
(trained on the gallery, probing every list so that re-ranked results must equal the
oracle's), Milvus Lite, and a real Milvus server (FLAT and HNSW collections) where
``FACEINDEX_TEST_MILVUS_URI`` names one (``make test-milvus-server``). The galleries are
small clustered sets shaped like face galleries: identities with a few samples each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.index.base import VectorIndex
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_options import FaissOptions
from faceindex.index.memory import MemoryIndex
from tests.contract import milvus_server

pytestmark = pytest.mark.contract

DIM = 128
# every list probed and 200 rows read exactly (with the RAM tier: 200 of its 1000 candidates),
# so the approximate kind must return what the oracle does on this small gallery
IVF = FaissOptions(
    kind="ivf", train_min=500, nlist=16, nprobe=16, rerank=200, tier="on", refine_exact=200
)
Open = Callable[[], VectorIndex]


def gallery(n_people: int = 300, per: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors): people ~0.8 apart, their samples ~0.35 apart (dlib-like)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.8 / np.sqrt(2 * DIM), (n_people, DIM))
    vecs = np.repeat(centres, per, 0) + rng.normal(
        0, 0.35 / np.sqrt(2 * DIM), (n_people * per, DIM)
    )
    ids = np.arange(1, n_people * per + 1, dtype=np.int64) * 7  # sparse, like a catalog's
    return ids, vecs.astype(np.float32)


def open_backend(kind: str, path: Path) -> VectorIndex:
    """The persistent backends by name, as a test (or a new process) opens them."""
    if kind == "faiss-flat":
        return FaissIndex(path / "idx", DIM, options=FaissOptions(kind="flat"))
    if kind == "faiss-ivf":
        return FaissIndex(path / "idx", DIM, options=IVF)
    if kind == "faiss-ivf-disk":
        return FaissIndex(
            path / "idx", DIM, options=FaissOptions(**{**IVF.to_dict(), "storage": "disk"})
        )
    if kind == "milvus-lite":
        from faceindex.index.milvus import MilvusIndex

        return MilvusIndex.from_url(f"milvus-lite:///{path / 'faces.db'}", dim=DIM)
    if kind in milvus_server.KINDS:
        from faceindex.index.milvus import MilvusIndex

        return MilvusIndex.from_url(milvus_server.collection_url(kind, path), dim=DIM)
    raise ValueError(kind)


def _milvus_lite(path: Path) -> Open:
    pytest.importorskip("pymilvus", reason="needs pymilvus: pip install 'faceindex[milvus]'")
    pytest.importorskip("milvus_lite", reason="needs milvus-lite: pip install 'faceindex[milvus]'")
    try:
        open_backend("milvus-lite", path).close()
    except Exception as exc:  # a sandbox without the server binary's needs, a locked port...
        pytest.skip(f"milvus-lite cannot start here: {exc}")
    return lambda: open_backend("milvus-lite", path)


SERVER = [pytest.param(k, marks=pytest.mark.integration) for k in milvus_server.KINDS]


@pytest.fixture(
    params=["memory", "faiss-flat", "faiss-ivf", "faiss-ivf-disk", "milvus-lite", *SERVER]
)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    kind = request.param
    if kind in milvus_server.KINDS:
        yield from _on_server(kind, tmp_path)
        return
    if kind == "memory":
        shared = MemoryIndex(DIM)  # not persistent: "reopening" returns the same object
        opened: Open = lambda: shared  # noqa: E731
    elif kind == "milvus-lite":
        opened = _milvus_lite(tmp_path)
    else:
        opened = lambda: open_backend(kind, tmp_path)  # noqa: E731
    opened.kind = kind  # type: ignore[attr-defined]
    opened.path = tmp_path  # type: ignore[attr-defined]
    yield opened
    shutil.rmtree(tmp_path / "idx", ignore_errors=True)


def _on_server(kind: str, path: Path) -> Iterator[Open]:
    milvus_server.server_uri()
    opened: Open = lambda: open_backend(kind, path)  # noqa: E731
    opened.kind = kind  # type: ignore[attr-defined]
    opened.path = path  # type: ignore[attr-defined]
    yield opened
    milvus_server.drop(milvus_server.collection_url(kind, path))


@pytest.fixture(params=SERVER)
def server_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Only the Milvus server kinds: a server process apart from the client's."""
    yield from _on_server(request.param, tmp_path)


def filled(opener: Open) -> tuple[VectorIndex, MemoryIndex, np.ndarray, np.ndarray]:
    ids, vecs = gallery()
    index, oracle = opener(), MemoryIndex(DIM)
    index.add(ids, vecs)
    oracle.add(ids, vecs)
    index.save()  # the IVF kind trains here (train_min=500)
    return index, oracle, ids, vecs


def probes(vecs: np.ndarray, n: int = 25) -> np.ndarray:
    rng = np.random.default_rng(5)
    picks = vecs[rng.choice(len(vecs), n, replace=False)]
    return (picks + rng.normal(0, 0.02, picks.shape)).astype(np.float32)


def assert_same(index: VectorIndex, oracle: MemoryIndex, q: np.ndarray, k: int = 10) -> None:
    got_d, got_i = index.search(q, k)
    want_d, want_i = oracle.search(q, k)
    assert got_i.shape == want_i.shape == (len(q), k)
    np.testing.assert_allclose(got_d, want_d, rtol=0, atol=2e-3)  # true L2, not squared
    for g, w, wd in zip(got_i, want_i, want_d, strict=True):
        free = tie_free(wd)
        assert set(g[free]) == set(w[free])


def tie_free(dist: np.ndarray) -> np.ndarray:
    """The ranks whose distance ties no neighbour's: tied ids may come in either order (a
    Milvus server returns equal vectors in either order), so neither member of a tie is
    compared by id, only by distance."""
    gaps = np.diff(dist) > 1e-4
    return np.r_[True, gaps] & np.r_[gaps, True]


def test_is_a_vector_index(opener: Open) -> None:
    index = opener()
    assert isinstance(index, VectorIndex)
    assert index.capabilities.supports_delete
    index.close()


def test_add_then_search_matches_oracle(opener: Open) -> None:
    index, oracle, ids, vecs = filled(opener)
    assert index.count() == oracle.count() == len(ids)
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    assert_same(index, oracle, probes(vecs))
    d, i = index.search(vecs[:1], 1)
    assert i[0, 0] == ids[0] and d[0, 0] < 1e-3  # a stored vector finds itself at ~0
    index.close()


def test_delete_then_search(opener: Open) -> None:
    index, oracle, ids, vecs = filled(opener)
    q = probes(vecs)
    _, before = oracle.search(q, 10)
    gone = np.unique(before[:, :3])  # the best hits of every probe
    assert index.remove(np.r_[gone, [999_999_999]]) == len(gone)  # absent ids do not count
    oracle.remove(gone)
    assert index.remove(gone) == 0
    _, after = index.search(q, 10)
    assert not np.isin(after, gone).any()
    assert index.count() == len(ids) - len(gone)
    assert_same(index, oracle, q)
    index.close()


@pytest.mark.parametrize("share", [0.02, 0.6])
def test_search_within_matches_oracle(opener: Open, share: float) -> None:
    """A restricted search returns only allowed ids, exactly the oracle's. The IVF kind scans
    a set no larger than its re-rank (200) exactly and filters a larger one in its scan:
    24 and 720 ids here."""
    index, oracle, ids, vecs = filled(opener)
    rng = np.random.default_rng(9)
    allowed = rng.choice(ids, int(share * len(ids)), replace=False)
    index.remove(allowed[:3])  # removed ids stay out even when allowed
    oracle.remove(allowed[:3])
    within = np.r_[allowed, [999_999_999]]  # an id the index never held changes nothing
    q = probes(vecs)
    got_d, got_i = index.search(q, 10, within=within)
    want_d, want_i = oracle.search(q, 10, within=within)
    assert np.isin(got_i[got_i >= 0], allowed[3:]).all()
    np.testing.assert_allclose(got_d, want_d, rtol=0, atol=2e-3)
    for g, w, wd in zip(got_i, want_i, want_d, strict=True):
        free = tie_free(wd)
        assert set(g[free]) == set(w[free])
    _, none = index.search(q[:2], 5, within=np.zeros(0, dtype=np.int64))
    assert (none == -1).all()
    index.close()


def test_reopen_keeps_everything(opener: Open) -> None:
    index, oracle, ids, vecs = filled(opener)
    index.remove(ids[:10])
    oracle.remove(ids[:10])
    index.save()
    index.close()
    again = opener()
    if not again.capabilities.persistent:
        pytest.skip("not persistent: nothing to reopen")
    assert again.count() == len(ids) - 10
    assert sorted(again.ids().tolist()) == sorted(ids[10:].tolist())
    assert_same(again, oracle, probes(vecs))
    again.close()


def test_readd_is_idempotent_and_replaces(opener: Open) -> None:
    index, oracle, ids, vecs = filled(opener)
    index.add(ids[:50], vecs[:50])
    assert index.count() == len(ids)
    moved = vecs[:50][::-1].copy()  # the same ids, other vectors
    index.add(ids[:50], moved)
    oracle.add(ids[:50], moved)
    assert index.count() == len(ids)
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    assert_same(index, oracle, np.vstack([moved[:10], probes(vecs)]))
    index.close()


def test_empty_and_short_results_are_padded(opener: Open) -> None:
    index = opener()
    d, i = index.search(np.zeros((2, DIM), np.float32), 5)
    assert (i == -1).all() and np.isinf(d).all()
    ids, vecs = gallery(n_people=1, per=3)
    index.add(ids, vecs)
    d, i = index.search(vecs[:1], 5)
    assert sorted(i[0, :3].tolist()) == sorted(ids.tolist())
    assert (i[0, 3:] == -1).all() and np.isinf(d[0, 3:]).all()
    assert index.count() == 3
    index.close()


# -- reopen, restart, delete then search after reopen ------------------------------------------


def _persistent(opener: Open) -> tuple[str, Path]:
    kind = opener.kind  # type: ignore[attr-defined]
    if kind == "memory":
        pytest.skip("not persistent: nothing to reopen")
    return kind, opener.path  # type: ignore[attr-defined]


def _in_new_process(kind: str, path: Path, queries: np.ndarray, k: int) -> dict[str, object]:
    """Open the backend in a fresh interpreter, as the next CLI command or a restarted
    server would, and return what it holds and finds."""
    np.save(path / "queries.npy", queries)
    script = (
        "import json, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from tests.contract.test_index_contract import open_backend\n"
        "path = Path(sys.argv[2])\n"
        "index = open_backend(sys.argv[1], path)\n"
        "d, i = index.search(np.load(path / 'queries.npy'), int(sys.argv[3]))\n"
        "out = {'count': index.count(), 'ids': sorted(index.ids().tolist()),\n"
        "       'dist': d.tolist(), 'found': i.tolist()}\n"
        "index.close()\n"
        "print(json.dumps(out))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    proc = subprocess.run(
        [sys.executable, "-c", script, kind, str(path), str(k)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_reopen_twice_then_change_and_search(opener: Open) -> None:
    """A second reopen (a store loaded on open must also be writable after it)."""
    _persistent(opener)
    index, oracle, ids, vecs = filled(opener)
    index.close()
    for round_ in range(2):
        again = opener()
        more_ids = np.arange(1, 6, dtype=np.int64) + 10_000 * (round_ + 1)
        more = probes(vecs, 5)
        again.add(more_ids, more)
        oracle.add(more_ids, more)
        again.save()
        assert again.count() == oracle.count()
        assert_same(again, oracle, np.vstack([more, probes(vecs)]))
        again.close()


def test_restart_in_a_new_process_finds_everything(opener: Open) -> None:
    kind, path = _persistent(opener)
    index, oracle, ids, vecs = filled(opener)
    index.close()
    q = probes(vecs)
    got = _in_new_process(kind, path, q, 10)
    assert got["count"] == len(ids) and got["ids"] == sorted(ids.tolist())
    want_d, want_i = oracle.search(q, 10)
    np.testing.assert_allclose(np.asarray(got["dist"]), want_d, rtol=0, atol=2e-3)
    assert (np.asarray(got["found"])[:, 0] == want_i[:, 0]).all()


def test_delete_then_search_after_reopen_and_restart(opener: Open) -> None:
    kind, path = _persistent(opener)
    index, oracle, ids, vecs = filled(opener)
    q = probes(vecs)
    _, before = oracle.search(q, 10)
    gone = np.unique(before[:, :3])
    assert index.remove(gone) == len(gone)
    oracle.remove(gone)
    index.save()
    index.close()
    again = opener()
    _, after = again.search(q, 10)
    assert not np.isin(after, gone).any()
    assert again.count() == len(ids) - len(gone)
    assert_same(again, oracle, q)
    again.close()
    got = _in_new_process(kind, path, q, 10)
    assert not np.isin(np.asarray(got["found"]), gone).any()
    assert got["count"] == len(ids) - len(gone)
    assert not set(got["ids"]) & set(gone.tolist())  # type: ignore[call-overload]


# -- the Milvus server process restarted (graceful stop, and SIGKILL) ----------------------------


@pytest.mark.slow  # a server restart is 30-90 s here
@pytest.mark.parametrize("how", ["restart", "crash"])
def test_server_restart_keeps_every_acknowledged_write(server_opener: Open, how: str) -> None:
    """Adds and deletes the server acknowledged survive its restart, even a SIGKILL; a new
    client then finds exactly them, and can write again."""
    index, oracle, ids, vecs = filled(server_opener)
    q = probes(vecs)
    _, before = oracle.search(q, 10)
    gone = np.unique(before[:, :3])
    assert index.remove(gone) == len(gone)
    oracle.remove(gone)
    index.close()
    milvus_server.restart_server(how)
    again = server_opener()
    assert again.count() == len(ids) - len(gone)
    assert sorted(again.ids().tolist()) == sorted(oracle.ids().tolist())
    _, after = again.search(q, 10)
    assert not np.isin(after, gone).any()
    assert_same(again, oracle, q)
    more_ids = np.arange(1, 6, dtype=np.int64) + 50_000
    again.add(more_ids, q[:5])
    oracle.add(more_ids, q[:5])
    assert again.count() == oracle.count()
    assert_same(again, oracle, q)
    again.close()


@pytest.mark.slow
def test_an_open_client_survives_a_server_restart(server_opener: Open) -> None:
    """A long-lived process (a faceindex server) keeps its index open while Milvus restarts:
    its next search, delete and add work without reopening."""
    index, oracle, ids, vecs = filled(server_opener)
    q = probes(vecs)
    milvus_server.restart_server("restart")
    assert_same(index, oracle, q)
    assert index.remove(ids[:5]) == 5
    oracle.remove(ids[:5])
    index.add(np.array([77_777], dtype=np.int64), q[:1])
    oracle.add(np.array([77_777], dtype=np.int64), q[:1])
    assert index.count() == oracle.count()
    assert_same(index, oracle, q)
    index.close()


@pytest.fixture(params=["milvus-lite", *SERVER])
def milvus_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """The Milvus kinds: Milvus Lite and, where one is named, a Milvus server."""
    if request.param == "milvus-lite":
        yield _milvus_lite(tmp_path)
        return
    yield from _on_server(request.param, tmp_path)


def test_a_released_collection_is_loaded_again(milvus_opener: Open) -> None:
    """An operator (or a server restart) releases the collection under an open index: its
    next reads load it again instead of failing with "collection not loaded"."""
    index, oracle, ids, vecs = filled(milvus_opener)
    # the index's own client stands for the operator's (Milvus Lite has one server per file
    # in a process, and a release is the server's state, whoever asks)
    milvus = index._client  # type: ignore[attr-defined]
    name = index.collection  # type: ignore[attr-defined]
    milvus.release_collection(name)
    assert milvus.get_load_state(name)["state"].name == "NotLoad"
    assert index.count() == len(ids)
    assert_same(index, oracle, probes(vecs))
    milvus.release_collection(name)
    assert index.remove(ids[:3]) == 3  # the removal's presence check is a read too
    assert sorted(index.ids().tolist()) == sorted(ids[3:].tolist())
    index.close()
