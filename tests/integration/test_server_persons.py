"""The persons routes and search by several photos / a person over HTTP, on a real engine
home holding real photos (../shared/faces): the answers validate against the schema,
changes are audited, and bad requests get a 4xx with a reason."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceindex.config import Settings
from faceindex.server.schemas import PersonOut, SearchOut

pytestmark = pytest.mark.integration

PEOPLE = ("obama", "biden")


@pytest.fixture(scope="module")
def api(
    shared_faces: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    root = tmp_path_factory.mktemp("persons-http")
    for name in PEOPLE:
        shutil.copytree(shared_faces / "face-recognition-knn" / name, root / "photos" / name)
    settings = Settings.load(
        root / "home", workers=1, rate_limit_burst=10_000, request_timeout_s=180
    )
    engine = Engine.open(settings, create=True)
    engine.add_source(
        "knn", path=str(root / "photos"), owner="o", legal_basis="consent", retention_days=9
    )
    engine.ingest("knn", in_process=True)
    store = AccountStore.for_home(settings.home)
    tokens = {r: store.add(f"{r}-1", r) for r in ("admin", "investigator", "auditor")}
    store.close()
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        yield client, tokens, app


def h(tokens: dict[str, str], who: str = "investigator") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def persons(client: TestClient, tokens: dict[str, str]) -> dict[str, dict[str, Any]]:
    """folder -> the person holding its first face."""
    r = client.get("/v1/persons", headers=h(tokens))
    assert r.status_code == 200, r.text
    out = {}
    for p in r.json()["persons"]:
        PersonOut.model_validate(p)
        out.setdefault(p["faces"][0]["provenance"][0]["locator"].split("/")[0], p)
    return out


def test_build_list_change_and_audit(api: Any) -> None:
    client, tokens, app = api
    r = client.post("/v1/persons/build", headers=h(tokens), json={"rebuild": True})
    assert r.status_code == 200 and r.json()["persons"] == 2, r.text
    people = persons(client, tokens)
    obama, biden = people["obama"], people["biden"]
    assert obama["face_count"] == 3 and biden["face_count"] == 2
    thumb = client.get(obama["representative_url"], headers=h(tokens))
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    stranger_face = biden["faces"][0]["face_id"]
    r = client.get(f"/v1/persons/{obama['id']}/faces/{stranger_face}/thumbnail", headers=h(tokens))
    assert r.status_code == 404  # a face of another person is not served under this one
    r = client.put(
        f"/v1/persons/{obama['id']}/label", headers=h(tokens), json={"label": "Case 7 subject"}
    )
    assert r.status_code == 200 and r.json()["labelled_by"] == "investigator-1"
    r = client.post(
        f"/v1/persons/{obama['id']}/merges", headers=h(tokens), json={"other": biden["id"]}
    )
    assert r.status_code == 200 and r.json()["face_count"] == 5
    moved = [f["face_id"] for f in biden["faces"]]
    r = client.post(
        f"/v1/persons/{obama['id']}/splits", headers=h(tokens), json={"face_ids": moved}
    )
    old, new = r.json()["persons"]
    assert (old["face_count"], new["face_count"]) == (3, 2) and old["label"] == "Case 7 subject"
    gone = old["faces"][0]["face_id"]
    r = client.delete(f"/v1/persons/{obama['id']}/faces/{gone}", headers=h(tokens))
    rest, own = r.json()["persons"]
    assert rest["face_count"] == 2 and [f["face_id"] for f in own["faces"]] == [gone]
    entries = app.state.faceindex.governance.audit.entries()
    ops = [e.event.details.get("op") for e in entries if e.event.action == "person-change"]
    assert ops == ["name", "merge", "split", "remove-face"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("get", "/v1/persons/424242", None, 404, "no person 424242"),
        ("post", "/v1/persons/{p}/splits", {"face_ids": [424242]}, 400, "not in person"),
        ("post", "/v1/persons/{p}/merges", {"other": "{p}"}, 400, "two different persons"),
        ("put", "/v1/persons/{p}/label", {"label": "a\nb"}, 422, "label"),
        ("post", "/v1/persons/{p}/splits", {"face_ids": []}, 422, "face_ids"),
        ("delete", "/v1/persons/{p}/faces/424242", None, 400, "not in person"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(
    api: Any, method: str, path: str, body: Any, status: int, words: str
) -> None:
    client, tokens, _ = api
    client.post("/v1/persons/build", headers=h(tokens))
    pid = client.get("/v1/persons", headers=h(tokens)).json()["persons"][0]["id"]
    path = path.replace("{p}", str(pid))
    if isinstance(body, dict):
        body = {k: (pid if v == "{p}" else v) for k, v in body.items()}
    r = client.request(method.upper(), path, headers=h(tokens), json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.json()["detail"]


def test_an_auditor_may_not_see_persons(api: Any) -> None:
    client, tokens, _ = api
    assert client.get("/v1/persons", headers=h(tokens, "auditor")).status_code == 403
    r = client.post("/v1/persons/build", headers=h(tokens, "auditor"))
    assert r.status_code == 403


def test_search_by_several_photos_and_by_a_person(api: Any, shared_faces: Path) -> None:
    client, tokens, _ = api
    folder = shared_faces / "face-recognition-knn" / "obama"
    files = [
        ("image", (p.name, p.read_bytes(), "image/jpeg"))
        for p in (folder / "obama.jpg", folder / "obama2.jpg")
    ]
    form = {"case_reference": "C-1", "purpose": "check"}
    r = client.post("/v1/searches", headers=h(tokens), files=files, data=form)
    assert r.status_code == 400 and "same_person" in r.json()["detail"]
    r = client.post(
        "/v1/searches", headers=h(tokens), files=files, data={**form, "same_person": "true"}
    )
    assert r.status_code == 200, r.text
    body = SearchOut.model_validate(r.json())
    (face,) = body.faces
    assert face.gallery_size == 2 * 5 and "template of 2 faces" in face.probe.warnings[0]
    assert face.matches[0].provenance[0].locator.startswith("obama/")
    shown = client.get(face.matches[0].thumbnail_url or "", headers=h(tokens))
    assert shown.status_code == 200  # template results link thumbnails like any search
    client.post("/v1/persons/build", headers=h(tokens))
    pid = next(
        p["id"]
        for p in client.get("/v1/persons", headers=h(tokens)).json()["persons"]
        if p["faces"][0]["provenance"][0]["locator"].startswith("biden/")
    )
    r = client.post(
        "/v1/searches", headers=h(tokens), data={**form, "person_id": str(pid), "fusion": "best-of"}
    )
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    biden = {
        f["face_id"] for f in client.get(f"/v1/persons/{pid}", headers=h(tokens)).json()["faces"]
    }
    assert not biden & {m["face_id"] for m in face["matches"]}
    r = client.post("/v1/searches", headers=h(tokens), data={**form, "person_id": "424242"})
    assert r.status_code == 404 and "no person" in r.json()["detail"]
    r = client.post("/v1/searches", headers=h(tokens), data=form)
    assert r.status_code == 400  # neither a photo nor a person


def test_a_label_the_schema_admits_is_stored(api: Any) -> None:
    """Any one line of text: accented, CJK, private-use (the fuzzer found isprintable()
    refusing what the schema allows)."""
    client, tokens, _ = api
    client.post("/v1/persons/build", headers=h(tokens))
    pid = client.get("/v1/persons", headers=h(tokens)).json()["persons"][0]["id"]
    label = "Fall «7» 張 \U000f1574 \u0e91x"
    r = client.put(f"/v1/persons/{pid}/label", headers=h(tokens), json={"label": label})
    assert r.status_code == 200 and r.json()["label"] == label, r.text
