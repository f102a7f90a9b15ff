"""No unaudited erasure: an erasure stopped at any point after its intent is written is
finished on the next open with the receipt it announced, and a rerun returns that receipt.

The crash is :class:`RaiseAt` here (the same seam the CLI's test hook kills at); the real
SIGKILL of a CLI process is in test_crash_resume.py and the kill loop."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceindex.catalog.base import ErasedRows
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import ConfigError, NotFoundError, StorageError
from faceindex.governance.faults import FaultInjected, RaiseAt, faults_from_env
from faceindex.governance.service import Governance
from faceindex.governance.store import GovernanceStore
from faceindex.vision.pack import DLIB_PACK
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("intent-photos")
    img = Image.fromarray(astronaut)
    for i, side in enumerate((300, 380)):
        (folder / f"img{i}.jpg").write_bytes(to_jpeg(np.asarray(img.resize((side, side)))))
    home = tmp_path_factory.mktemp("intent") / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as gov,
    ):
        gov.add_source(
            "press", path=str(folder), owner="o", legal_basis="consent", retention_days=30
        )
        assert gov.ingest("press", in_process=True).faces_indexed == 2
    return home


@pytest.fixture
def home(ingested: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(ingested, copy)
    return copy


def _open(home: Path) -> tuple[Engine, Governance]:
    eng = Engine.open(Settings.load(home, workers=1))
    return eng, Governance.open(eng)


def _crash(home: Path, point: str, erase: str, *args: Any) -> None:
    with (
        Engine.open(Settings.load(home, workers=1)) as eng,
        Governance.open(eng, faults=RaiseAt([point])) as gov,
        pytest.raises(FaultInjected),
    ):
        getattr(gov, erase)(*args)


def _deletions(gov: Governance) -> list[dict[str, Any]]:
    return [dict(e.event.details) for e in gov.audit.entries() if e.event.action == "deletion"]


@pytest.mark.parametrize("point", ["erasure-intent", "erasure-committed", "erasure-compacted"])
def test_a_source_erasure_stopped_anywhere_gets_its_receipt_on_the_next_open(
    home: Path, point: str
) -> None:
    _crash(home, point, "erase_source", "press")
    eng, gov = _open(home)
    with eng, gov:
        receipts = gov.receipts()
        assert len(receipts) == 1 and receipts[0].recovered and receipts[0].kind == "source"
        assert (receipts[0].faces_deleted, receipts[0].images_deleted) == (2, 2)
        assert gov.erase_source("press").id == receipts[0].id  # the rerun: same receipt
        assert eng.catalog.count_faces() == 0 and eng.index.count() == 0
        assert len(gov.tombstones(receipts[0].id)) == 2
        check = gov.verify_receipt(receipts[0].id)
        assert check.ok, check.problems
        intent, done, repeat = _deletions(gov)
        assert (intent["phase"], done["phase"], repeat["phase"]) == ("intent", "done", "repeat")
        assert intent["receipt"] == done["receipt"] == receipts[0].id and done["recovered"]


def test_an_image_erasure_stopped_after_its_commit_is_finished_by_the_next_erasure(
    home: Path,
) -> None:
    eng, server = _open(home)  # a long-lived process (the server) opened before the crash
    with eng, server:
        first, second = eng.catalog.image_ids_of_source(eng.catalog.get_source("press").id)
        store = GovernanceStore(home / "governance.db", dim=eng.pack.dim)
        dying = Governance(
            eng, server.audit, store, server.actor, faults=RaiseAt(["erasure-committed"])
        )
        with pytest.raises(FaultInjected):
            dying.erase_images([first])
        store.close()
        assert server.store.pending_intents()
        r2 = server.erase_images([second])
        done = {r.target: r for r in server.receipts()}
        assert done[str(first)].recovered and not r2.recovered
        assert server.verify_receipt(done[str(first)].id).ok
        assert server.store.pending_intents() == []


def test_a_running_erasure_is_not_recovered_by_another_open(home: Path) -> None:
    _crash(home, "erasure-intent", "erase_source", "press")
    holder = GovernanceStore(home / "governance.db", dim=DLIB_PACK.dim)
    with holder.erasure_lock():  # another process mid-erasure: its intent is alive
        eng, gov = _open(home)
        with eng, gov:
            assert gov.receipts() == [] and eng.catalog.get_source("press")
    holder.close()
    eng, gov = _open(home)  # the lock is free: now it is finished
    with eng, gov:
        assert [r.recovered for r in gov.receipts()] == [True]
        with pytest.raises(NotFoundError):
            eng.catalog.get_source("press")


class _FailingDeletes:
    """The real catalog, except that deleting images fails (a full disk, a lost server)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def delete_images(self, image_ids: Sequence[int]) -> ErasedRows:
        raise StorageError("disk full")


def test_a_failed_commit_aborts_its_intent_and_keeps_no_tombstone(home: Path) -> None:
    eng, gov = _open(home)
    with eng, gov:
        image = eng.catalog.image_ids_of_source(eng.catalog.get_source("press").id)[0]
        real = eng.catalog
        eng.catalog = _FailingDeletes(real)  # type: ignore[assignment]
        with pytest.raises(StorageError):
            gov.erase_images([image])
        eng.catalog = real
        assert gov.store.pending_intents() == [] and gov.tombstones() == []
        assert [d["phase"] for d in _deletions(gov)] == ["intent", "aborted"]
        assert eng.catalog.existing_images([image]) == [image]
    eng, gov = _open(home)
    with eng, gov:
        assert gov.receipts() == []  # nothing to finish: the intent was aborted


def test_the_cli_test_hook_is_inert_unless_set() -> None:
    assert faults_from_env({}).reached("erasure-committed") is None
    with pytest.raises(ConfigError, match="unknown fault points"):
        faults_from_env({"FACEINDEX_TEST_KILL_AT": "erasure-typo"})
