"""POST /v1/verifications, POST /v1/searches/{id}/reviews and GET /v1/cases/{ref} over one
app on real photos (../shared/faces): the answers, the decisions shown in later searches
and the case view, the 4xx reasons, and who may see which case."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceindex.config import Settings
from tests.conftest import to_jpeg

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    knn: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def photo(self, rel: str) -> bytes:
        return (self.knn / rel).read_bytes()

    def search(self, who: str, rel: str, case: str) -> dict[str, Any]:
        r = self.client.post(
            "/v1/searches",
            headers=self.h(who),
            files={"image": ("p.jpg", self.photo(rel), "image/jpeg")},
            data={"case_reference": case, "purpose": "identify"},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def verify(self, who: str, a: bytes, b: bytes, **data: str) -> Any:
        return self.client.post(
            "/v1/verifications",
            headers=self.h(who),
            files=[
                ("image_a", ("a.jpg", a, "image/jpeg")),
                ("image_b", ("b.jpg", b, "image/jpeg")),
            ],
            data={"case_reference": "C-V", "purpose": "identify", **data},
        )

    def review(self, who: str, search_id: str, **body: Any) -> Any:
        return self.client.post(f"/v1/searches/{search_id}/reviews", headers=self.h(who), json=body)


@pytest.fixture(scope="module")
def api(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    knn = shared_faces / "face-recognition-knn"
    root = tmp_path_factory.mktemp("casework-http")
    for rel in ("obama/obama.jpg", "biden/biden.jpg"):
        (root / "photos" / Path(rel).parent).mkdir(parents=True)
        shutil.copy(knn / rel, root / "photos" / rel)
    settings = Settings.load(root / "home", workers=1, rate_limit_burst=1000)
    engine = Engine.open(settings, create=True)
    engine.add_source(
        "press", path=str(root / "photos"), owner="o", legal_basis="consent", retention_days=9
    )
    engine.ingest("press", in_process=True)
    store = AccountStore.for_home(settings.home)
    tokens = {
        "investigator": store.add("inv-1", "investigator"),
        "investigator2": store.add("inv-2", "investigator"),
        "auditor": store.add("aud-1", "auditor"),
        "admin": store.add("adm-1", "admin"),
    }
    store.close()
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Api(client, tokens, knn)


def problem(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return str(r.json()["detail"])


@pytest.mark.slow  # six comparisons of large photos: about 50 s on a shared box
def test_verify_same_different_and_no_face(api: Api) -> None:
    obama, obama2 = api.photo("obama/obama.jpg"), api.photo("obama/obama2.jpg")
    same = api.verify("investigator", obama, obama2)
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["same_person"] and body["decision"] == "match" and body["fmr"] < 0.01
    assert body["fmr_words"].startswith("about 1 pair in") and body["case_reference"] == "C-V"
    assert [f["faces_found"] for f in body["faces"]] == [1, 1]

    other = api.verify("investigator", obama, api.photo("biden/biden.jpg")).json()
    assert not other["same_person"] and other["decision"] == "no-match"
    assert other["meaning"].startswith("Different people")

    from skimage import data

    coffee = to_jpeg(np.asarray(data.coffee()))
    assert "photo B" in problem(api.verify("investigator", obama, coffee), 422)
    assert "photo A" in problem(api.verify("investigator", b"\xff\xd8nope", obama), 422)
    assert "photo A has 1 face" in problem(
        api.verify("investigator", obama, obama, face_a="2"), 400
    )
    assert "purpose" in problem(api.verify("investigator", obama, obama, purpose=""), 422)
    assert problem(api.verify("auditor", obama, obama2), 403)


def test_verify_refuses_bad_input_with_a_reason(api: Api) -> None:
    obama = api.photo("obama/obama.jpg")
    assert "photo A" in problem(api.verify("investigator", b"\xff\xd8nope", obama), 422)
    assert "purpose" in problem(api.verify("investigator", obama, obama, purpose=""), 422)
    assert "face_b" in problem(api.verify("investigator", obama, obama, face_b="0"), 422)
    assert problem(api.verify("auditor", obama, obama), 403)


def test_a_decision_shows_in_later_searches_and_the_case_view(api: Api) -> None:
    first = api.search("investigator", "obama/obama2.jpg", "C-HTTP")
    sid = first["search_id"]
    best = first["faces"][0]["matches"][0]
    assert best["review"] is None
    r = api.review("investigator", sid, face_id=best["face_id"], decision="rejected", note="ears")
    assert r.status_code == 201, r.text
    assert r.json()["decision"] == "rejected" and r.json()["reviewer"] == "inv-1"

    later = api.search("investigator", "obama/obama2.jpg", "C-HTTP")
    shown = {m["face_id"]: m["review"] for m in later["faces"][0]["matches"]}
    assert shown[best["face_id"]]["decision"] == "rejected"
    assert shown[best["face_id"]]["note"] == "ears"
    assert [v for f, v in shown.items() if f != best["face_id"]] == [None]
    # a colleague's search of the same case shows the decision too
    theirs = api.search("investigator2", "obama/obama2.jpg", "C-HTTP")
    assert theirs["faces"][0]["matches"][0]["review"]["reviewer"] == "inv-1"
    elsewhere = api.search("investigator", "obama/obama2.jpg", "C-OTHER")
    assert all(m["review"] is None for m in elsewhere["faces"][0]["matches"])

    case = api.client.get("/v1/cases/C-HTTP", headers=api.h("investigator"))
    assert case.status_code == 200, case.text
    view = case.json()
    assert [s["search_id"] for s in view["searches"]] == [
        sid, later["search_id"], theirs["search_id"],
    ]  # fmt: skip
    assert [s["actor"] for s in view["searches"]] == ["inv-1", "inv-1", "inv-2"]
    assert all(s["candidates"] == 2 and s["sources"] == ["press"] for s in view["searches"])
    decided = {c["face_id"]: c for c in view["candidates"]}
    assert decided[best["face_id"]]["review"]["decision"] == "rejected"
    assert len(decided) == 2 and all(c["held"] for c in decided.values())
    assert decided[best["face_id"]]["provenance"][0]["locator"] == "obama/obama.jpg"

    audit = api.client.get("/v1/audit", headers=api.h("auditor"), params={"limit": 50}).json()
    reviews = [e for e in audit["entries"] if e["action"] == "review"]
    assert reviews and reviews[0]["case"] == "C-HTTP"
    assert reviews[0]["details"]["search_id"] == sid
    searches = [e for e in audit["entries"] if e["action"] == "search" and e["case"] == "C-HTTP"]
    assert {e["details"]["search_id"] for e in searches} == {
        s["search_id"] for s in view["searches"]
    }


def test_who_may_see_and_decide_which_case(api: Api) -> None:
    mine = api.search("investigator", "biden/biden.jpg", "C-SOLO")
    sid, face = mine["search_id"], mine["faces"][0]["matches"][0]["face_id"]
    assert api.client.get("/v1/cases/C-SOLO", headers=api.h("investigator")).status_code == 200
    assert api.client.get("/v1/cases/C-SOLO", headers=api.h("auditor")).status_code == 200
    assert api.client.get("/v1/cases/C-SOLO", headers=api.h("admin")).status_code == 200
    assert "no case" in problem(
        api.client.get("/v1/cases/C-SOLO", headers=api.h("investigator2")), 404
    )
    assert "no search" in problem(
        api.review("investigator2", sid, face_id=face, decision="confirmed"), 404
    )
    assert problem(api.review("auditor", sid, face_id=face, decision="confirmed"), 403)
    assert api.review("admin", sid, face_id=face, decision="confirmed").status_code == 201


def test_bad_review_requests_get_a_4xx_with_a_reason(api: Api) -> None:
    found = api.search("investigator", "biden/biden.jpg", "C-BAD")
    sid, face = found["search_id"], found["faces"][0]["matches"][0]["face_id"]
    assert "decision" in problem(
        api.review("investigator", sid, face_id=face, decision="maybe"), 422
    )
    assert "note" in problem(
        api.review("investigator", sid, face_id=face, decision="rejected", note="a\nb"), 422
    )
    assert "face_id" in problem(api.review("investigator", sid, decision="rejected"), 422)
    assert "not among the candidates" in problem(
        api.review("investigator", sid, face_id=face + 1000, decision="rejected"), 404
    )
    assert "no search" in problem(
        api.review("investigator", "0" * 24, face_id=face, decision="rejected"), 404
    )
    problem(api.review("investigator", "not-hex", face_id=face, decision="rejected"), 422)
    assert "no case" in problem(
        api.client.get("/v1/cases/NO-SUCH-CASE", headers=api.h("admin")), 404
    )
    problem(api.client.get("/v1/cases/%0A", headers=api.h("admin")), 422)


def test_a_case_reference_with_a_slash_works(api: Api) -> None:
    api.search("investigator", "biden/biden.jpg", "2026/17")
    r = api.client.get("/v1/cases/2026%2F17", headers=api.h("investigator"))
    assert r.status_code == 200, r.text
    assert r.json()["case_reference"] == "2026/17"
