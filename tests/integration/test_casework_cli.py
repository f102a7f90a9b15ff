"""faceindex verify, review and case show as an investigator runs them, on real photos
(../shared/faces): exit codes, decisions shown in later searches of the case, the case
view, the audit entries, and roles that are refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from faceindex.server.schemas import SearchOut
from faceindex.server.schemas_casework import CaseOut, FaceVerificationOut
from tests.conftest import to_jpeg

# Each command loads the face models afresh (about 10 s on a shared box): slow. The same
# flows run in the default suite over HTTP, one app (tests/integration/test_casework_server.py).
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.needs_faces, pytest.mark.slow]

GALLERY = ("obama/obama.jpg", "biden/biden.jpg")


def run(home: Path, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--home", str(home)], env={"FACEINDEX_WORKERS": "1", **env}
    )
    return result.exit_code, result.output


def run_json(home: Path, *args: str, **env: str) -> tuple[int, Any]:
    code, out = run(home, *args, "--json", **env)
    return code, json.loads(out) if code in (0, 1) else out


@pytest.fixture(scope="module")
def knn(shared_faces: Path) -> Path:
    return shared_faces / "face-recognition-knn"


@pytest.fixture(scope="module")
def home(knn: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("casework")
    home, photos = root / "home", root / "photos"
    for rel in GALLERY:
        (photos / Path(rel).parent).mkdir(parents=True)
        shutil.copy(knn / rel, photos / rel)
    assert run(home, "init")[0] == 0
    code, out = run(
        home, "sources", "add", "press", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0, out
    assert run(home, "ingest", "press")[0] == 0
    yield home


def verify(home: Path, a: Path, b: Path, *extra: str) -> tuple[int, Any]:
    return run_json(home, "verify", str(a), str(b), "--case", "C-V", "--purpose", "id", *extra)


def audit_entries(home: Path) -> list[dict[str, Any]]:
    from faceindex.config import Settings
    from faceindex.governance.audit_key import open_audit

    log = open_audit(Settings.load(home))
    try:
        return [e.as_dict() for e in log.entries()]
    finally:
        log.close()


def test_verify_exit_codes_on_real_photos(
    home: Path, knn: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    code, same = verify(home, knn / "obama/obama.jpg", knn / "obama/obama2.jpg")
    assert code == 0, same
    FaceVerificationOut.model_validate(same)  # the HTTP schema, field for field
    assert same["same_person"] and same["decision"] == "match" and same["fmr"] < 0.01
    assert same["meaning"].startswith("The same person")

    code, other = verify(home, knn / "obama/obama.jpg", knn / "biden/biden.jpg")
    assert code == 1, other
    assert not other["same_person"] and other["decision"] == "no-match"
    assert other["distance"] > same["distance"]

    from skimage import data

    no_face = tmp_path / "coffee.jpg"
    no_face.write_bytes(to_jpeg(np.asarray(data.coffee())))
    code, out = verify(home, knn / "obama/obama.jpg", no_face)
    assert code == 2 and "photo B" in out and "no face" in out

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    code, out = verify(home, broken, knn / "obama/obama.jpg")
    assert code == 2 and "photo A" in out
    code, out = verify(home, knn / "obama/obama.jpg", tmp_path / "absent.jpg")
    assert code == 2 and "cannot read" in out
    code, out = verify(home, knn / "obama/obama.jpg", knn / "obama/obama2.jpg", "--face-b", "3")
    assert code == 2 and "photo B has 1 face" in out

    entries = [e for e in audit_entries(home) if e["action"] == "verify"]
    ok = [e for e in entries if e["outcome"] == "ok"]
    assert [e["details"]["decision"] for e in ok] == ["match", "no-match"]
    assert all(e["case"] == "C-V" and e["purpose"] == "id" for e in entries)
    assert {e["details"]["error"] for e in entries if e["outcome"] == "error"} >= {
        "NoFaceError",
        "DecodeError",
    }


def test_a_decision_is_stored_audited_and_shown_in_later_views(home: Path, knn: Path) -> None:
    probe = str(knn / "obama/obama2.jpg")
    code, first = run_json(home, "search", probe, "--case", "C-7", "--purpose", "id")
    assert code == 0, first
    sid = first["search_id"]
    best = first["faces"][0]["matches"][0]
    assert best["provenance"][0]["locator"].endswith("obama.jpg") and best["review"] is None
    face = best["face_id"]

    code, out = run(home, "review", sid, str(face), "confirmed", "--note", "same ear shape")
    assert code == 0, out
    assert f"face {face} of search {sid} (C-7): confirmed" in out

    code, later = run_json(home, "search", probe, "--case", "C-7", "--purpose", "id again")
    SearchOut.model_validate(later)
    review = later["faces"][0]["matches"][0]["review"]
    assert review["decision"] == "confirmed" and review["note"] == "same ear shape"
    assert review["search_id"] == sid and review["reviewer"] == "local-admin"
    assert later["search_id"] != sid
    code, elsewhere = run_json(home, "search", probe, "--case", "C-8", "--purpose", "id")
    assert elsewhere["faces"][0]["matches"][0]["review"] is None  # another case's decision

    code, text = run(
        home, "search", probe, "--case", "C-7", "--purpose", "text view", COLUMNS="250"
    )
    assert "confirmed (local-admin)" in text and "search " in text

    # a second decision supersedes the first in the views; both stay in the history
    assert run(home, "review", sid, str(face), "inconclusive")[0] == 0
    code, case = run_json(home, "case", "show", "C-7")
    assert code == 0, case
    CaseOut.model_validate(case)
    assert [s["purpose"] for s in case["searches"]] == ["id", "id again", "text view"]
    assert case["searches"][0]["search_id"] == sid and case["searches"][0]["sources"] == ["press"]
    assert all(s["candidates"] == 2 and s["actor"] == "local-admin" for s in case["searches"])
    (mine,) = [c for c in case["candidates"] if c["face_id"] == face]
    assert mine["review"]["decision"] == "inconclusive" and mine["held"]
    assert [r["decision"] for r in mine["history"]] == ["confirmed", "inconclusive"]
    assert sid in mine["search_ids"] and len(mine["search_ids"]) == 3
    code, text = run(home, "case", "show", "C-7", COLUMNS="250")
    assert code == 0 and "inconclusive" in text and sid in text

    reviews = [e for e in audit_entries(home) if e["action"] == "review"]
    assert [e["details"]["decision"] for e in reviews] == ["confirmed", "inconclusive"]
    assert reviews[0]["case"] == "C-7" and reviews[0]["face_ids"] == [face]
    assert reviews[0]["details"] == {
        "search_id": sid, "decision": "confirmed", "note": "same ear shape",
    }  # fmt: skip


def test_bad_reviews_are_refused_with_a_reason(home: Path, knn: Path) -> None:
    probe = str(knn / "biden/biden.jpg")
    code, found = run_json(home, "search", probe, "--case", "C-9", "--purpose", "id")
    sid = found["search_id"]
    returned = {m["face_id"] for m in found["faces"][0]["matches"]}
    code, out = run(home, "review", sid, str(max(returned) + 100), "confirmed")
    assert code == 3 and "not among the candidates" in out
    code, out = run(home, "review", sid, str(min(returned)), "maybe")
    assert code == 2 and "one of: confirmed, rejected, inconclusive" in out
    code, out = run(home, "review", "f" * 24, str(min(returned)), "rejected")
    assert code == 3 and "no search" in out
    code, out = run(home, "review", "not-an-id", str(min(returned)), "rejected")
    assert code == 2 and "24 hex digits" in out
    code, out = run(home, "case", "show", "C-NEVER")
    assert code == 3 and "no case" in out


def test_roles_without_the_case_are_refused(home: Path, knn: Path) -> None:
    probe = str(knn / "obama/obama2.jpg")
    code, found = run_json(home, "search", probe, "--case", "C-10", "--purpose", "id")
    sid, face = found["search_id"], found["faces"][0]["matches"][0]["face_id"]
    auditor = {"FACEINDEX_ACTOR": "aud-1", "FACEINDEX_ACTOR_ROLE": "auditor"}
    code, out = run(home, "review", sid, str(face), "rejected", **auditor)
    assert code == 6 and "lacks the 'search' permission" in out
    code, view = run_json(home, "case", "show", "C-10", **auditor)  # auditors read every case
    assert code == 0 and view["searches"][0]["search_id"] == sid

    colleague = {"FACEINDEX_ACTOR": "inv-2", "FACEINDEX_ACTOR_ROLE": "investigator"}
    code, out = run(home, "case", "show", "C-10", **colleague)
    assert code == 3 and "no case" in out
    code, out = run(home, "review", sid, str(face), "rejected", **colleague)
    assert code == 3 and "no search" in out
    privacy = {"FACEINDEX_ACTOR": "po-1", "FACEINDEX_ACTOR_ROLE": "privacy-officer"}
    assert run(home, "verify", probe, probe, "--case", "C-10", "--purpose", "x", **privacy)[0] == 6

    denied = [e for e in audit_entries(home) if e["action"] == "denied"]
    assert {(e["actor"], e["details"]["action"]) for e in denied} >= {
        ("aud-1", "review"), ("inv-2", "case-view"), ("inv-2", "review"), ("po-1", "verify"),
    }  # fmt: skip
