"""An ingest and an erasure of the same bytes, at once, in two engines on one real SQLite
home (each its own catalog, index and governance store connection, as two processes have):
the erasure holds. The ingest is stopped just after its batch passed the tombstone screen
and before its catalog commit; the erasure of those bytes is started then. Before the fix
the erasure completed in that gap and the ingest's commit brought the bytes back (until
gc); now the erasure waits for the batch's commit and takes what it added with it."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.service import Governance
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


class PauseAt:
    """Fault points that stop the calling thread at ``point`` until released."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.reached_it = threading.Event()
        self.release = threading.Event()

    def reached(self, point: str) -> None:
        if point == self.point and not self.reached_it.is_set():
            self.reached_it.set()
            self.release.wait(60)


def test_an_erasure_during_an_ingest_of_the_same_bytes_holds(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    home, press, mirror = tmp_path / "home", tmp_path / "press", tmp_path / "mirror"
    press.mkdir()
    mirror.mkdir()
    data = to_jpeg(astronaut)
    sha = hashlib.sha256(data).hexdigest()
    (press / "a.jpg").write_bytes(data)
    shutil.copy(press / "a.jpg", mirror / "copy.jpg")
    settings = Settings.load(home, workers=1)
    with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
        for name, folder in (("press", press), ("mirror", mirror)):
            gov.add_source(
                name, path=str(folder), owner="o", legal_basis="consent", retention_days=30
            )
        assert gov.ingest("press", in_process=True).faces_indexed >= 1
        image_id = gov.engine.catalog.images_holding([sha])[sha]

    pause = PauseAt("ingest-screened")
    errors: list[BaseException] = []
    erased = threading.Event()

    def ingest() -> None:
        try:
            with Engine.open(settings) as eng, Governance.open(eng, faults=pause) as gov:
                gov.ingest("mirror", in_process=True)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            pause.reached_it.set()

    def erase() -> None:
        try:
            with Engine.open(settings) as eng, Governance.open(eng) as gov:
                gov.erase_images([image_id], reason="request 41")
                erased.set()
        except BaseException as exc:
            errors.append(exc)

    ingesting = threading.Thread(target=ingest)
    ingesting.start()
    assert pause.reached_it.wait(120) and not errors, errors
    erasing = threading.Thread(target=erase)
    erasing.start()
    finished_in_gap = erased.wait(3)  # before the fix it finished here, in the gap
    pause.release.set()
    ingesting.join(120)
    erasing.join(120)
    assert not errors, errors
    with Engine.open(settings) as eng, Governance.open(eng) as gov:
        assert gov.engine.catalog.images_holding([sha]) == {}, "the erased bytes came back"
        assert not finished_in_gap, "the erasure completed between the screen and the commit"
        assert gov.engine.catalog.live_face_ids().size == 0
        (receipt,) = gov.receipts()
        check = gov.verify_receipt(receipt.id)
        assert check.ok, check.problems
        # The copy's location went with the image: a rerun of the mirror is refused.
        again = gov.ingest("mirror", in_process=True)
        assert again.faces_indexed == 0 and again.skipped[0][0] == "copy.jpg"
