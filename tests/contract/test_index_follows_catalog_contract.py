"""An index follows its catalog on SQLite and on PostgreSQL: two catalog objects stand for
two processes (a server holding an index, a CLI writing), each its own connection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.index.memory import MemoryIndex
from faceindex.index.synced import SyncedIndex
from tests.contract.builders import OpenCatalog, face, new_source, outcome

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
