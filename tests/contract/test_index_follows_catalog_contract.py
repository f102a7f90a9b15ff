"""An index follows its catalog on SQLite and on PostgreSQL: two catalog objects stand for
two processes (a server holding an index, a CLI writing), each its own connection. The
crash-and-reopen case runs on Milvus Lite and, where FACEINDEX_TEST_MILVUS_URI names one, on
a real Milvus server (a collection that outlives the process that wrote it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.index.memory import MemoryIndex
from faceindex.index.synced import SyncedIndex
from tests.contract.builders import OpenCatalog, face, new_source, outcome
from tests.contract.test_index_contract import SERVER, Open, _milvus_lite, _on_server

pytestmark = pytest.mark.contract


def test_an_index_follows_another_writer_and_reconciles_from_its_stamp(
    reopen: OpenCatalog, tmp_path: Path
) -> None:
    server, cli = reopen(), reopen()
    src = server.add_source(new_source())
    index = SyncedIndex(MemoryIndex(128), server, tmp_path)
    index.reconcile()
    new = cli.record(
        [outcome(src.id, f"{n}.jpg", n, (face(i),)) for i, n in enumerate("abcd")], model="m"
    )
    assert index.count() == 4
    _, found = index.search(new[2][1], 1)
    assert found[0, 0] == new[2][0]
    cli.delete_faces([new[0][0]])
    assert sorted(index.ids().tolist()) == sorted(i for i, _ in new[1:])
    index.save()  # stamps the generation its content reflects

    # a crash elsewhere: the catalog moves on, this index's saved state does not
    cli.delete_faces([new[1][0]])
    later = cli.record([outcome(src.id, "e.jpg", "e", (face(9),))], model="m")
    restarted = SyncedIndex(MemoryIndex(128), reopen(), tmp_path)
    restarted.inner.add(  # type: ignore[attr-defined]
        np.array([i for i, _ in new[1:]]), np.stack([v for _, v in new[1:]])
    )  # as the saved files held them: equal count, one stale, one missing
    assert restarted.reconcile() == (1, 1)
    assert sorted(restarted.ids().tolist()) == sorted([new[2][0], new[3][0], later[0][0]])


@pytest.fixture(params=["milvus-lite", *SERVER])
def milvus_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    if request.param == "milvus-lite":
        yield _milvus_lite(tmp_path)
        return
    yield from _on_server(request.param, tmp_path)


def test_a_milvus_collection_reopened_after_a_crash_reconciles_from_its_stamp(
    reopen: OpenCatalog, milvus_index: Open, tmp_path: Path
) -> None:
    """A writer commits to the catalog and dies before its Milvus call: the collection
    lacks one face and keeps one erased; the next open reconciles it from the stamp."""
    server = reopen()
    src = server.add_source(new_source())
    home = tmp_path / "home"
    index = SyncedIndex(milvus_index(), server, home)
    assert index.reconcile() == (0, 0)
    new = server.record(
        [outcome(src.id, f"{n}.jpg", n, (face(i),)) for i, n in enumerate("abcd")], model="m"
    )
    index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))  # as ingest does
    index.save()
    cli = reopen()
    cli.delete_faces([new[0][0]])
    later = cli.record([outcome(src.id, "e.jpg", "e", (face(9),))], model="m")
    index.inner.close()  # the process dies here: the catalog moved on, the collection not

    restarted = SyncedIndex(milvus_index(), reopen(), home)
    assert restarted.reconcile() == (1, 1)
    want = sorted([i for i, _ in new[1:]] + [later[0][0]])
    assert sorted(restarted.ids().tolist()) == want
    assert restarted.count() == 4
    _, found = restarted.search(later[0][1], 1)
    assert found[0, 0] == later[0][0]
    _, found = restarted.search(new[0][1], 1)
    assert found[0, 0] != new[0][0]
    restarted.close()
