"""faceindex persons and search by several photos / by a person, as a user runs them: real
dlib models on real photos (../shared/faces), a real engine home, the audit log read back."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.server.schemas import SearchOut

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PEOPLE = ("obama", "biden", "rose_leslie")  # 3 + 2 + 2 photos, one face each


def run(home: Path, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--home", str(home)], env={"FACEINDEX_WORKERS": "1", **env}
    )
    return result.exit_code, result.output


def persons(home: Path) -> list[dict[str, object]]:
    code, out = run(home, "persons", "list", "--json")
    assert code == 0, out
    return json.loads(out)["persons"]  # type: ignore[no-any-return]


def by_folder(people: list[dict[str, object]]) -> dict[str, set[int]]:
    """folder (true identity) -> ids of the persons holding its faces."""
    out: dict[str, set[int]] = {}
    for p in people:
        for f in p["faces"]:  # type: ignore[attr-defined]
            for loc in f["provenance"]:
                out.setdefault(loc["locator"].split("/")[0], set()).add(p["id"])  # type: ignore[arg-type]
    return out


def audit(home: Path, action: str) -> list[dict[str, object]]:
    db = sqlite3.connect(home / "audit.db")
    rows = [json.loads(r[0]) for r in db.execute("SELECT body FROM audit ORDER BY seq")]
    db.close()
    return [r for r in rows if r["action"] == action]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_faces: Path) -> Path:
    root = tmp_path_factory.mktemp("persons")
    photos, home = root / "photos", root / "home"
    for name in PEOPLE:
        shutil.copytree(shared_faces / "face-recognition-knn" / name, photos / name)
    assert run(home, "init")[0] == 0
    code, out = run(
        home, "sources", "add", "knn", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0, out
    assert run(home, "ingest", "knn")[0] == 0
    return home


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Path:
    """A copy of the ingested home, so each test changes its own."""
    shutil.copytree(built, tmp_path / "home")
    return tmp_path / "home"


def test_build_finds_the_people_and_is_incremental(home: Path) -> None:
    code, out = run(home, "persons", "build", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["faces_placed"] == 7 and report["persons"] == 3
    people = persons(home)
    assert {k: len(v) for k, v in by_folder(people).items()} == {p: 1 for p in PEOPLE}
    for p in people:
        assert p["representative"] in [f["face_id"] for f in p["faces"]]  # type: ignore[attr-defined]
        assert p["sources"] == ["knn"]
    code, out = run(home, "persons", "build", "--json")
    assert json.loads(out)["faces_placed"] == 0  # nothing new: nothing moves
    assert persons(home) == people
    (entry,) = audit(home, "person-build")[-1:]
    assert entry["details"]["method"] == "chinese-whispers"  # type: ignore[index]


def test_name_merge_split_remove_face_audited_and_kept_by_rebuild(home: Path) -> None:
    assert run(home, "persons", "build")[0] == 0
    ids = by_folder(persons(home))
    obama, biden = next(iter(ids["obama"])), next(iter(ids["biden"]))
    code, out = run(home, "persons", "name", str(obama), "Case C-7 subject", "--json")
    assert code == 0 and json.loads(out)["label"] == "Case C-7 subject"
    code, out = run(home, "persons", "merge", str(obama), str(biden), "--json")
    merged = json.loads(out)
    assert code == 0 and merged["face_count"] == 5 and merged["label"] == "Case C-7 subject"
    biden_faces = [
        f["face_id"] for f in merged["faces"] if f["provenance"][0]["locator"].startswith("biden")
    ]
    code, out = run(
        home, "persons", "split", str(obama), "--faces", ",".join(map(str, biden_faces)), "--json"
    )
    assert code == 0, out
    old, new = json.loads(out)["persons"]
    assert old["id"] == obama and old["face_count"] == 3 and new["face_count"] == 2
    one = old["faces"][0]["face_id"]
    code, out = run(home, "persons", "remove-face", str(obama), str(one), "--json")
    rest, own = json.loads(out)["persons"]
    assert rest["face_count"] == 2 and [f["face_id"] for f in own["faces"]] == [one]
    before = {p["id"]: sorted(f["face_id"] for f in p["faces"]) for p in persons(home)}
    assert run(home, "persons", "build", "--rebuild")[0] == 0
    after = {p["id"]: sorted(f["face_id"] for f in p["faces"]) for p in persons(home)}
    assert after == before  # every user decision survives a rebuild
    ops = [e["details"]["op"] for e in audit(home, "person-change")]  # type: ignore[index]
    assert ops == ["name", "merge", "split", "remove-face"]
    moved = audit(home, "person-change")[2]
    assert sorted(moved["face_ids"]) == sorted(biden_faces)  # type: ignore[arg-type]


def test_bad_requests_are_refused_with_a_reason(home: Path) -> None:
    assert run(home, "persons", "build")[0] == 0
    pid = persons(home)[0]["id"]
    for args, words in [
        (("persons", "show", "999"), "no person 999"),
        (("persons", "split", str(pid), "--faces", "x,y"), "--faces takes"),
        (("persons", "split", str(pid), "--faces", "999"), "not in person"),
        (("persons", "merge", str(pid), str(pid)), "two different"),
        (("persons", "remove-face", str(pid), "999"), "not in person"),
    ]:
        code, out = run(home, *args)
        assert code != 0 and words in out, (args, out)


def test_who_may_see_and_change_persons(home: Path) -> None:
    assert run(home, "persons", "build")[0] == 0
    code, out = run(home, "persons", "list", FACEINDEX_ACTOR_ROLE="auditor")
    assert code != 0 and "lacks the 'search' permission" in out
    code, out = run(home, "persons", "build", FACEINDEX_ACTOR_ROLE="privacy-officer")
    assert code != 0 and "manage-persons" in out
    pid = str(persons(home)[0]["id"])
    code, out = run(home, "persons", "name", pid, "X", FACEINDEX_ACTOR_ROLE="investigator")
    assert code == 0, out
    denied = audit(home, "denied")
    assert [d["details"]["action"] for d in denied] == ["person-view", "person-build"]  # type: ignore[index]


def test_erasure_keeps_persons_consistent(home: Path) -> None:
    assert run(home, "persons", "build")[0] == 0
    rose = next(p for p in persons(home) if len(by_folder([p]).get("rose_leslie", ())))
    faces = [f["face_id"] for f in rose["faces"]]  # type: ignore[attr-defined]
    assert run(home, "erase", "face", str(faces[0]), "--reason", "request")[0] == 0
    code, out = run(home, "persons", "show", str(rose["id"]), "--json")
    left = json.loads(out)
    assert [f["face_id"] for f in left["faces"]] == faces[1:]
    assert left["representative"] == faces[1]
    assert run(home, "erase", "face", str(faces[1]), "--reason", "request")[0] == 0
    code, out = run(home, "persons", "show", str(rose["id"]))
    assert code != 0 and "no person" in out  # a person with no face left is gone


def test_search_by_several_photos_and_by_a_person(home: Path, shared_faces: Path) -> None:
    knn = shared_faces / "face-recognition-knn"
    photos = [str(knn / "obama" / "obama.jpg"), str(knn / "obama" / "obama2.jpg")]
    args = ("--case", "C-1", "--purpose", "check", "--json")
    code, out = run(home, "search", *photos, *args[:4])
    assert code != 0 and "--same-person" in out
    code, out = run(home, "search", *photos, "--same-person", *args)
    body = json.loads(out)
    SearchOut.model_validate(body)  # the one result schema
    (face,) = body["faces"]
    assert face["gallery_size"] == 2 * 7  # the bands count m x N comparisons
    assert "template of 2 faces" in face["probe"]["warnings"][0]
    top = face["matches"][:3]
    assert all(m["provenance"][0]["locator"].startswith("obama/") for m in top)
    assert code == 0 and top[0]["decision"] == "match"
    assert run(home, "persons", "build")[0] == 0
    obama = next(iter(by_folder(persons(home))["obama"]))
    code, out = run(home, "search", "--person", str(obama), "--fusion", "mean", *args)
    (face,) = json.loads(out)["faces"]
    assert face["gallery_size"] == 3 * 4  # three faces, compared with the other four
    assert not any(m["provenance"][0]["locator"].startswith("obama/") for m in face["matches"])
    assert all(m["decision"] == "no-match" for m in face["matches"])
    (entry,) = audit(home, "search")[-1:]
    assert entry["details"]["person"] == obama and entry["details"]["fusion"] == "mean"  # type: ignore[index]
