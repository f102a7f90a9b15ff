"""An engine's index follows the catalog whoever writes it: two catalog objects on one
SQLite file stand for two processes (a server and a CLI), each with its own index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_options import FaissOptions
from faceindex.index.memory import MemoryIndex
from faceindex.index.synced import SyncedIndex
from tests.contract.builders import face, new_source

DIM = 128


class CountingIndex(MemoryIndex):
    """The oracle, counting the vectors it is given (a double apply shows up here)."""

    def __init__(self) -> None:
        super().__init__(DIM)
        self.added = 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.added += len(ids)
        super().add(ids, vectors)


def record(cat: Catalog, source_id: int, names: str, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    outs = [
        ImageOutcome(
            source_id, f"{n}.jpg", 1, 1.0, f"{seed}-{n}".ljust(64, "0"), 9, 9, (face(seed + i),)
        )
        for i, n in enumerate(names)
    ]
    return cat.record(outs, "m")


def add_to(index: object, new: list[tuple[int, np.ndarray]]) -> None:
    index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))  # type: ignore[attr-defined]


@pytest.fixture
def two(tmp_path: Path) -> tuple[SqliteCatalog, SqliteCatalog, int]:
    here, there = SqliteCatalog(tmp_path / "c.db"), SqliteCatalog(tmp_path / "c.db")
    src = here.add_source(new_source())
    yield here, there, src.id
    here.close()
    there.close()


def test_follows_faces_another_process_adds_and_removes(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path
) -> None:
    here, there, sid = two
    index = SyncedIndex(CountingIndex(), here, tmp_path / "a")
    index.reconcile()
    new = record(there, sid, "abc")
    assert index.count() == 3  # no restart: the count follows
    d, found = index.search(new[1][1], 1)
    assert found[0, 0] == new[1][0] and d[0, 0] < 1e-3
    there.delete_faces([new[0][0]])
    assert sorted(index.ids().tolist()) == [new[1][0], new[2][0]]
    assert index.inner.added == 3  # type: ignore[attr-defined]


def test_own_writes_are_not_applied_twice(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path
) -> None:
    here, there, sid = two
    index = SyncedIndex(CountingIndex(), here, tmp_path / "a")
    index.reconcile()
    mine = record(here, sid, "ab")
    add_to(index, mine)  # as the ingest runner does right after its commit
    theirs = record(there, sid, "cd", seed=10)
    assert index.count() == 4
    assert index.inner.added == 4  # type: ignore[attr-defined]
    assert sorted(index.ids().tolist()) == sorted(i for i, _ in mine + theirs)


def test_reconcile_from_the_stamp_repairs_an_equal_count_mismatch(tmp_path: Path) -> None:
    """Item 4: a crash left one stale vector and one missing one; counts agree."""
    settings = Settings.load(tmp_path / "home", workers=1)
    with Engine.open(settings, create=True) as engine:
        src = engine.add_source(
            "s", path=str(tmp_path), owner="o", legal_basis="consent", retention_days=9
        )
        new = record(engine.catalog, src.id, "abc")
        add_to(engine.index, new)
    crashed = SqliteCatalog(tmp_path / "home" / "catalog.db")  # a writer that died before
    crashed.delete_faces([new[0][0]])  # it could touch the index: the catalog moved on
    later = record(crashed, src.id, "d", seed=7)
    crashed.close()
    with Engine.open(settings) as engine:
        assert engine.index.count() == 3
        want = sorted([new[1][0], new[2][0], later[0][0]])
        assert sorted(engine.index.ids().tolist()) == want


def test_reconcile_without_a_stamp_compares_every_id(tmp_path: Path) -> None:
    """An index saved before stamps existed (or a lost stamp): counts agree, ids do not."""
    settings = Settings.load(tmp_path / "home", workers=1)
    with Engine.open(settings, create=True) as engine:
        src = engine.add_source(
            "s", path=str(tmp_path), owner="o", legal_basis="consent", retention_days=9
        )
        new = record(engine.catalog, src.id, "ab")
        add_to(engine.index, new)
    stale = FaissIndex(tmp_path / "home" / "index", DIM)
    stale.remove(np.array([new[0][0]]))
    stale.add(np.array([999]), new[0][1][None, :])
    stale.close()
    (tmp_path / "home" / "index" / "catalog-sync.json").unlink()
    with Engine.open(settings) as engine:
        assert sorted(engine.index.ids().tolist()) == sorted(i for i, _ in new)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_files_another_process_rebuilt_or_compacted_are_reloaded(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path, kind: str
) -> None:
    here, there, sid = two
    opts = FaissOptions(kind=kind, train_min=300, nlist=4, nprobe=4)  # type: ignore[arg-type]
    server = SyncedIndex(FaissIndex(tmp_path / "idx", DIM, options=opts), here, tmp_path / "idx")
    server.reconcile()
    cli = SyncedIndex(FaissIndex(tmp_path / "idx", DIM, options=opts), there, tmp_path / "idx")
    cli.reconcile()
    rng = np.random.default_rng(3)
    outs = [
        ImageOutcome(sid, f"{i}.jpg", 1, 1.0, f"{i:064x}", 9, 9, (face(i),)) for i in range(400)
    ]
    new = there.record(outs, "m")
    add_to(cli, new)
    cli.save()  # trains the IVF kind (400 >= train_min)
    assert server.count() == 400
    gone = [i for i, _ in new[:150]]
    there.delete_faces(gone)
    cli.remove(np.array(gone))
    assert cli.compact() >= 0  # the IVF kind rewrites its vectors file (a new generation)
    cli.rebuild(there.iter_embeddings(), kind="ivf" if kind == "flat" else "flat")
    assert server.count() == 250
    probe = new[200][1] + rng.normal(0, 1e-3, DIM).astype(np.float32)
    d, found = server.search(probe[None, :], 3)
    assert found[0, 0] == new[200][0] and d[0, 0] < 0.05
    assert not np.isin(server.ids(), gone).any()
    mine = record(here, sid, "zz", seed=900)[:1]
    add_to(server, mine)  # appends to the files the CLI wrote, not to the ones it removed
    server.save()
    cli.close()
    server.close()
    again = FaissIndex(tmp_path / "idx", DIM)
    assert again.count() == 251
    d, found = again.search(mine[0][1][None, :], 1)
    assert found[0, 0] == mine[0][0] and d[0, 0] < 0.02  # float32, |v| ~ 11


def test_two_processes_appending_raw_vectors_do_not_overwrite_each_other(tmp_path: Path) -> None:
    """The IVF kind's raw vectors file is shared: a server's unsaved rows must survive a CLI
    appending after it, whichever map is saved last."""
    opts = FaissOptions(kind="ivf")
    server = FaissIndex(tmp_path / "idx", DIM, options=opts)
    cli = FaissIndex(tmp_path / "idx", DIM, options=opts)
    rng = np.random.default_rng(1)
    theirs, mine = rng.normal(size=(5, DIM)), rng.normal(size=(5, DIM))
    cli.add(np.arange(1, 6), theirs)
    server.add(np.arange(11, 16), mine)  # today: written over the CLI's rows
    server.save()
    cli.save()  # the CLI's map wins the race
    again = FaissIndex(tmp_path / "idx", DIM)
    d, found = again.search(theirs.astype(np.float32), 1)
    assert found[:, 0].tolist() == [1, 2, 3, 4, 5] and float(d.max()) < 0.02


class SharedStore(CountingIndex):
    """Stands for a Milvus cluster: one store that every process writes itself."""

    capabilities = MemoryIndex.capabilities.__class__(
        exact=True, supports_delete=True, persistent=True, distributed=True
    )


def test_a_distributed_store_is_not_copied_into(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path
) -> None:
    here, there, sid = two
    index = SyncedIndex(SharedStore(), here, tmp_path / "a")
    index.reconcile()
    add_to(index.inner, record(there, sid, "ab"))  # the other process wrote the store itself
    assert index.count() == 2 and index.inner.added == 2  # type: ignore[attr-defined]


def test_forgotten_own_generations_are_only_reapplied(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faceindex.catalog.sql as sql_module

    here, _, sid = two
    monkeypatch.setattr(sql_module, "OWN_KEPT", 4)
    index = SyncedIndex(MemoryIndex(DIM), here, tmp_path / "a")
    index.reconcile()
    mine: list[int] = []
    for n in range(6):
        new = record(here, sid, f"x{n}", seed=20 * n)
        add_to(index, new)
        mine += [i for i, _ in new]
    assert len(here._own) <= 4
    assert sorted(index.ids().tolist()) == sorted(mine)


def test_own_writes_stamped_before_they_reached_the_index_are_repaired(
    two: tuple[SqliteCatalog, SqliteCatalog, int], tmp_path: Path
) -> None:
    """A save between an own commit and its index update stamps a generation the files do
    not hold; a crash then leaves one missing and one stale vector at equal counts."""
    here, _, sid = two
    index = SyncedIndex(FaissIndex(tmp_path / "idx", DIM), here, tmp_path / "idx")
    index.reconcile()
    first = record(here, sid, "ab")
    add_to(index, first)
    index.save()
    late = record(here, sid, "c", seed=5)  # committed; the ingest has not added it yet
    here.delete_faces([first[0][0]])  # committed; the erasure has not removed it yet
    index.save()  # e.g. the runner's periodic save from another thread: stamps both
    # crash: neither index update happens
    again = SyncedIndex(FaissIndex(tmp_path / "idx", DIM), here, tmp_path / "idx")
    again.reconcile()
    assert sorted(again.ids().tolist()) == sorted([first[1][0], late[0][0]])
