"""The privacy officer's and auditor's HTTP routes, end to end on a real engine: tombstones
and their audited lift, audit anchors and verify against them, exports made, listed and
fetched, subject access with the thumbnails of what is held (only for the caller who asked),
and the audit log filtered and paged on the server."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceindex.config import Settings
from faceindex.governance.roles import Role
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


@dataclass
class Api:
    client: TestClient
    app: Any
    tokens: dict[str, str]
    photo: bytes
    root: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def api(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    root = tmp_path_factory.mktemp("privacy-api")
    folder = root / "photos"
    folder.mkdir()
    photo = to_jpeg(astronaut)
    (folder / "astronaut.jpg").write_bytes(photo)
    # A generous request timeout: these tests check answers, not latency (a shared box).
    settings = Settings.load(root / "home", workers=1, rate_limit_burst=1000, request_timeout_s=300)
    engine = Engine.open(settings, create=True)
    engine.add_source(
        "nasa", path=str(folder), owner="NASA", legal_basis="consent", retention_days=9
    )
    engine.ingest("nasa", in_process=True)
    store = AccountStore.for_home(settings.home)
    tokens = {r.value: store.add(f"{r.value}-1", r) for r in Role}
    tokens["officer2"] = store.add("officer-2", Role.PRIVACY_OFFICER)
    store.close()
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        yield Api(client, app, tokens, photo, root)


def _erased_source(api: Api, name: str) -> tuple[str, str]:
    """(receipt id, sha256) of a faceless image only source ``name`` held, erased."""
    folder = api.root / name
    folder.mkdir()
    data = to_jpeg(np.random.default_rng(len(name)).integers(0, 255, (48, 48, 3), np.uint8))
    (folder / "n.jpg").write_bytes(data)
    gov = api.app.state.faceindex.governance
    gov.add_source(name, path=str(folder), owner="x", legal_basis="consent", retention_days=1)
    gov.ingest(name, in_process=True)
    r = api.client.delete(f"/v1/sources/{name}", headers=api.h("admin"), params={"reason": "r1"})
    assert r.status_code == 200, r.text
    return r.json()["id"], hashlib.sha256(data).hexdigest()


def test_tombstones_are_listed_and_lifted_with_a_reason(api: Api) -> None:
    receipt, sha = _erased_source(api, "tomb-a")
    officer = api.h("privacy-officer")
    rows = api.client.get("/v1/tombstones", headers=officer, params={"receipt": receipt})
    assert rows.status_code == 200 and [t["sha256"] for t in rows.json()] == [sha]
    blank = api.client.post(
        "/v1/tombstone-lifts", headers=officer, json={"target": sha, "reason": " "}
    )
    assert blank.status_code == 422  # a reason is required
    r = api.client.post(
        "/v1/tombstone-lifts", headers=officer, json={"target": sha, "reason": "ruling 9"}
    )
    assert r.status_code == 201 and r.json() == {"lifted": [sha]}
    again = api.client.post(
        "/v1/tombstone-lifts", headers=officer, json={"target": sha, "reason": "ruling 9"}
    )
    assert again.status_code == 404
    assert (
        api.client.get("/v1/tombstones", headers=officer, params={"receipt": receipt}).json() == []
    )
    audit = api.client.get(
        "/v1/audit", headers=api.h("auditor"), params={"action": "tombstone-lift"}
    ).json()
    assert [e["details"]["reason"] for e in audit["entries"]] == ["ruling 9"]


def test_an_anchor_is_returned_and_verifies_the_log(api: Api) -> None:
    r = api.client.post("/v1/audit/anchors", headers=api.h("auditor"))
    assert r.status_code == 201, r.text
    head = r.json()
    assert head["mac"] and head["seq"] >= 1 and str(head["seq"]) in head["line"]
    ok = api.client.post(
        "/v1/audit/verifications", headers=api.h("auditor"), json={"anchors": [head["line"]]}
    )
    assert ok.status_code == 200 and ok.json()["ok"] and ok.json()["anchors"] == 1
    forged = head["line"].replace(head["hash"], "0" * len(head["hash"]))
    bad = api.client.post(
        "/v1/audit/verifications", headers=api.h("auditor"), json={"anchors": [forged]}
    )
    assert bad.status_code == 200 and not bad.json()["ok"]
    junk = api.client.post(
        "/v1/audit/verifications", headers=api.h("auditor"), json={"anchors": ["junk"]}
    )
    assert junk.status_code == 400


def test_an_export_is_made_listed_and_fetched_as_written(api: Api) -> None:
    r = api.client.post(
        "/v1/exports",
        headers=api.h("investigator"),
        json={"source": "nasa", "case_reference": "C-9", "purpose": "court order"},
    )
    assert r.status_code == 201, r.text
    record = r.json()
    assert record["rows"] >= 1 and record["sources"] == ["nasa"]
    listed = api.client.get("/v1/exports", headers=api.h("privacy-officer")).json()
    assert record["id"] in [e["id"] for e in listed]
    got = api.client.get(f"/v1/exports/{record['id']}/csv", headers=api.h("investigator"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(got.content).hexdigest() == record["sha256"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert len(rows) == record["rows"] and rows[0]["item"] == "astronaut.jpg"
    assert "embedding" not in rows[0]
    missing = api.client.post(
        "/v1/exports",
        headers=api.h("investigator"),
        json={"source": "nope", "case_reference": "C-9", "purpose": "x"},
    )
    assert missing.status_code == 404


def test_subject_access_answers_with_thumbnails_only_its_caller_may_fetch(api: Api) -> None:
    r = api.client.post(
        "/v1/subject-access",
        headers=api.h("privacy-officer"),
        files=[("images", ("p.jpg", api.photo, "image/jpeg"))],
        data={"reference": "SAR-1"},
    )
    assert r.status_code == 200, r.text
    held = r.json()
    assert held and all(h["thumbnail_url"] for h in held)
    url = held[0]["thumbnail_url"]
    thumb = api.client.get(url, headers=api.h("privacy-officer"))
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # a JPEG
    assert api.client.get(url, headers=api.h("officer2")).status_code == 404  # not theirs
    other = url.rsplit("/", 2)[0] + f"/{held[0]['face_id'] + 1000}/thumbnail"
    assert api.client.get(other, headers=api.h("privacy-officer")).status_code == 404


def test_the_audit_log_is_filtered_and_paged_on_the_server(api: Api) -> None:
    for n in range(3):
        r = api.client.post(
            "/v1/searches",
            headers=api.h("investigator"),
            files={"image": ("a.jpg", api.photo, "image/jpeg")},
            data={"case_reference": f"CASE-{n}", "purpose": "paging"},
        )
        assert r.status_code == 200, r.text
    auditor = api.h("auditor")
    page = api.client.get(
        "/v1/audit", headers=auditor, params={"action": "search", "limit": 2}
    ).json()
    assert [e["case"] for e in page["entries"]] == ["CASE-2", "CASE-1"]
    assert page["next_before"] is not None
    rest = api.client.get(
        "/v1/audit",
        headers=auditor,
        params={"action": "search", "limit": 2, "before": page["next_before"]},
    ).json()
    assert [e["case"] for e in rest["entries"]] == ["CASE-0"]
    one = api.client.get(
        "/v1/audit", headers=auditor, params={"case": "case-1", "actor": "investigator-1"}
    ).json()
    assert [(e["action"], e["case"]) for e in one["entries"]] == [("search", "CASE-1")]
    assert one["entries"][0]["face_ids"] and one["entries"][0]["sources"] == ["nasa"]
    today = one["entries"][0]["at"][:10]
    assert (
        api.client.get("/v1/audit", headers=auditor, params={"until": "2000-01-01"}).json()[
            "entries"
        ]
        == []
    )
    dated = api.client.get(
        "/v1/audit", headers=auditor, params={"since": today, "until": today, "case": "CASE-1"}
    ).json()
    assert len(dated["entries"]) == 1
    bad = api.client.get("/v1/audit", headers=auditor, params={"since": "yesterday"})
    assert bad.status_code == 422


def test_a_search_export_runs_an_audited_search_and_registers_its_csv(api: Api) -> None:
    r = api.client.post(
        "/v1/exports/searches",
        headers=api.h("investigator"),
        files={"image": ("a.jpg", api.photo, "image/jpeg")},
        data={"case_reference": "C-10", "purpose": "court order", "top_k": "3"},
    )
    assert r.status_code == 201, r.text
    record = r.json()
    assert record["kind"] == "results" and record["rows"] >= 1 and record["case"] == "C-10"
    got = api.client.get(f"/v1/exports/{record['id']}/csv", headers=api.h("investigator"))
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert rows[0]["item"] == "astronaut.jpg" and rows[0]["decision"] == "match"
    log = api.client.get("/v1/audit", headers=api.h("auditor"), params={"case": "C-10"}).json()
    assert {"search", "export"} <= {e["action"] for e in log["entries"]}
