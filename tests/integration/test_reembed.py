"""faceindex reembed: a home moves to another model, holding what it held and nothing more;
an interrupted run resumes, an interrupted switch completes, and it is audited."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import ConfigError, InputError, PermissionDenied
from faceindex.governance.roles import Actor, Role
from faceindex.governance.service import Governance
from faceindex.home_switch import complete_switch, switch, write_state
from faceindex.model_record import read_record
from faceindex.reembed import staging_dir
from faceindex.vision.pack import resolve_pack
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration

pytest.importorskip("onnx", reason="the packs' graphs are built with the onnx package")
pytest.importorskip("onnxruntime", reason="ONNX packs run on onnxruntime")

from tests.packs import DIM, face_picture, write_pack  # noqa: E402  (needs onnx)

NEW_DIM = 12


@pytest.fixture
def packs(tmp_path: Path) -> tuple[Path, Path]:
    old = write_pack(tmp_path / "old-pack", name="old")
    new = write_pack(tmp_path / "new-pack", name="new", dim=NEW_DIM, seed=11)
    return old, new


@pytest.fixture
def home(tmp_path: Path, packs: tuple[Path, Path]) -> Path:
    """A home on the old pack: five people, one pair picture, one broken file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for person in range(1, 6):
        (folder / f"person{person}.jpg").write_bytes(to_jpeg(face_picture(person)))
    pair = np.maximum(face_picture(1, (0,)), face_picture(2, (3,)))
    (folder / "pair.jpg").write_bytes(to_jpeg(pair))
    home = tmp_path / "home"
    with (
        Engine.open(Settings.load(home, workers=1, model=str(packs[0])), create=True) as eng,
        Governance.open(eng) as gov,
    ):
        gov.add_source(
            "photos", path=str(folder), owner="tests", legal_basis="consent", retention_days=9
        )
        assert gov.ingest("photos", in_process=True).faces_indexed == 7
    return home


def _open(home: Path) -> tuple[Engine, Governance]:
    eng = Engine.open(Settings.load(home, workers=1))  # the home's own model
    return eng, Governance.open(eng)


def _items(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "catalog.db") as db:
        return dict(db.execute("SELECT locator, ingested_at FROM items").fetchall())


def _face_of(gov: Governance, picture: np.ndarray) -> list[int]:
    results = gov.search(to_jpeg(picture), case="T", purpose="testing")
    return [m.face_id for r in results for m in r.matches if m.decision == "match"]


def test_reembed_moves_the_home_holding_what_it_held(home: Path, packs: tuple[Path, Path]) -> None:
    eng, gov = _open(home)
    with eng, gov:
        # erase one face on its own (its image stays) and one whole image
        (lone,) = [f for f in _face_of(gov, face_picture(1)) if f in _pair_faces(eng)]
        gov.erase_faces([lone], reason="test")
        (img5,) = {eng.catalog.faces([f])[f].image_id for f in _face_of(gov, face_picture(5))}
        gov.erase_images([img5], reason="test")
        person = gov.erase_person([to_jpeg(face_picture(4))], reason="test")  # keeps a probe
        old_max = int(eng.catalog.live_face_ids().max())
        first = _items(home)
        report = gov.reembed(str(packs[1]), in_process=True)
        assert report.model_from.startswith("old@1") and report.model_to.startswith("new@1")
        assert (report.faces, report.images, report.faces_not_found) == (4, 5, 0)
        # found again by the new model and dropped: the lone erased face and person 4's
        assert report.faces_dropped == 2
        assert report.receipt_probes_dropped == 1
        assert gov.verify_receipt(person.id).ok  # by ids, without the old model's probe
        assert _face_of(gov, face_picture(4)) == []
        # the facade's engine now runs on the new model
        assert eng.index.dim == NEW_DIM and eng.pack.name == "new"
        assert gov.store.dim == NEW_DIM
        assert min(int(i) for i in eng.catalog.live_face_ids()) > old_max  # no id reused
        assert _face_of(gov, face_picture(5)) == []  # the erased image stays erased
        pair_now = _pair_faces(eng)
        assert len(pair_now) == 1  # only person 2's face in the pair picture
        assert len(_face_of(gov, face_picture(2))) == 2
        actions = [(e.event.action, e.event.details.get("phase")) for e in gov.audit.entries()]
        assert ("reembed", "start") in actions and ("reembed", "done") in actions
    assert _items(home) == {k: v for k, v in first.items() if k != "person5.jpg"}
    assert read_record(home) == resolve_pack(str(packs[1])).identity
    assert not (home / "reembed").exists()
    eng, gov = _open(home)  # later commands open it with its new model, unasked
    with eng, gov:
        assert eng.pack.name == "new" and eng.index.count() == 4
    with pytest.raises(ConfigError, match=r"built with model new@1"):
        Engine.open(Settings.load(home, model=str(packs[0])))


def _pair_faces(eng: Engine) -> list[int]:
    ids = [int(i) for i in eng.catalog.live_face_ids()]
    return [i for i, row in eng.catalog.faces(ids).items() if any(
        p.locator == "pair.jpg" for p in row.locations)]  # fmt: skip


class Crash(Exception):
    pass


def test_an_interrupted_reembed_resumes_and_the_old_home_stays_usable(
    home: Path, packs: tuple[Path, Path]
) -> None:
    calls = 0

    def crash_after_two(_: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Crash

    eng, gov = _open(home)
    settings_batch = eng.settings.model_copy(update={"batch_size": 1})
    eng.settings = settings_batch
    with eng, gov, pytest.raises(Crash):
        gov.reembed(str(packs[1]), progress=crash_after_two, in_process=True)
    staging = staging_dir(home, resolve_pack(str(packs[1])))
    assert (staging / "catalog.db").exists() and read_record(home).name == "old"
    eng, gov = _open(home)  # the old home opens and searches as before
    with eng, gov:
        assert eng.pack.name == "old" and eng.index.count() == 7
        report = gov.reembed(str(packs[1]), in_process=True)
    assert report.faces == 7
    with sqlite3.connect(home / "catalog.db") as db:
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 6  # no duplicates


def test_an_interrupted_switch_is_completed_before_the_home_opens(tmp_path: Path) -> None:
    home = tmp_path / "home"
    staging = home / "reembed" / "new@1"
    for root, tag in ((home, "old"), (staging, "new")):
        (root / "index").mkdir(parents=True)
        (root / "index" / "vectors").write_text(tag)
        (root / "catalog.db").write_text(tag)
        (root / "model.json").write_text(tag)
    (home / "catalog.db-wal").write_text("old")  # an old WAL must not meet the new catalog
    write_state(staging, {"phase": "switching"})
    # the crash: the old files moved out, only the new catalog moved in
    retired = home / "reembed" / "retired"
    retired.mkdir()
    for name in ("catalog.db", "catalog.db-wal", "index", "model.json"):
        (home / name).rename(retired / name)
    (staging / "catalog.db").rename(home / "catalog.db")
    assert complete_switch(home)
    assert (home / "catalog.db").read_text() == "new"
    assert (home / "index" / "vectors").read_text() == "new"
    assert (home / "model.json").read_text() == "new"
    assert not (home / "catalog.db-wal").exists()
    assert not (home / "reembed").exists() or not any((home / "reembed").iterdir())
    assert not complete_switch(home)
    switch(home, staging)  # running it again changes nothing
    assert (home / "catalog.db").read_text() == "new"


def test_reembed_is_refused_where_it_cannot_be_right(home: Path, packs: tuple[Path, Path]) -> None:
    eng, gov = _open(home)
    with eng, gov:
        with pytest.raises(PermissionDenied):
            gov.acting_as(Actor("ivan", Role.INVESTIGATOR)).reembed(str(packs[1]))
        with pytest.raises(InputError, match="already uses old@1"):
            gov.reembed(str(packs[0]))
        gov.opt_out([to_jpeg(face_picture(3))], reference="OPT-3")
        with pytest.raises(InputError, match="1 opt-out suppression"):
            gov.reembed(str(packs[1]))
        denied = [e for e in gov.audit.entries() if e.event.outcome == "denied"]
        assert denied and denied[-1].event.details["action"] == "reembed"
    assert read_record(home).name == "old" and not (home / "reembed").exists()
    by_url = Settings.load(home, index_url=f"faiss://{home / 'index'}")
    with (
        Engine.open(by_url) as eng,
        Governance.open(eng) as gov,
        pytest.raises(InputError, match="configured by URL"),
    ):
        gov.reembed(str(packs[1]))


def test_the_cli_reembeds_a_home(home: Path, packs: tuple[Path, Path]) -> None:
    from typer.testing import CliRunner

    from faceindex.cli import app

    result = CliRunner().invoke(
        app, ["reembed", "--model", str(packs[1]), "--home", str(home), "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["faces"] == 7 and out["model_to"] == f"new@1 ({NEW_DIM}-d, cosine)"
    stats = CliRunner().invoke(app, ["stats", "--home", str(home), "--json"])
    assert stats.exit_code == 0 and json.loads(stats.output)["index_vectors"] == 7
    again = CliRunner().invoke(app, ["reembed", "--model", str(packs[1]), "--home", str(home)])
    assert again.exit_code == 2 and "already uses new@1" in again.output
    assert DIM != NEW_DIM
