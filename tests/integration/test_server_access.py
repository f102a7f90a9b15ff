"""Every API route called as every role, with no token, with a revoked token, and with
another user's object ids: only what governance/roles.py permits may succeed."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceindex.config import Settings
from faceindex.governance.roles import ROLE_PERMISSIONS, Permission, Role

pytestmark = pytest.mark.integration

ANY = "any signed-in role"
PUBLIC = "public"


@dataclass
class World:
    client: TestClient
    app: Any
    tokens: dict[str, str]  # role value (and "revoked", "admin2", ...) -> token
    photo: bytes
    stranger: bytes
    folder: Path
    searches: dict[str, str]  # role -> a search id of that role's own
    face_id: int


def to_jpeg(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    root = tmp_path_factory.mktemp("access")
    folder = root / "photos"
    folder.mkdir()
    photo = to_jpeg(astronaut)
    from skimage import data

    # The cameraman's head, cropped so HOG finds it at once: someone not in the gallery.
    stranger = to_jpeg(np.stack([data.camera()[60:260, 130:320]] * 3, axis=-1))
    (folder / "astronaut.jpg").write_bytes(photo)
    settings = Settings.load(root / "home", workers=1, rate_limit_burst=1000)
    engine = Engine.open(settings, create=True)
    engine.add_source(
        "nasa", path=str(folder), owner="NASA", legal_basis="consent", retention_days=9
    )
    engine.ingest("nasa", in_process=True)
    face_id = int(engine.catalog.live_face_ids()[0])
    store = AccountStore.for_home(settings.home)
    tokens = {r.value: store.add(f"{r.value}-1", r) for r in Role}
    tokens["admin2"] = store.add("admin-2", Role.ADMIN)
    tokens["investigator2"] = store.add("investigator-2", Role.INVESTIGATOR)
    tokens["revoked"] = store.add("gone", Role.ADMIN)
    store.revoke("gone")
    store.close()
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        searches = {}
        for role, token in tokens.items():
            if role != "revoked" and Permission.SEARCH in ROLE_PERMISSIONS.get(
                Role(role.rstrip("2")), frozenset()
            ):
                r = client.post(
                    "/v1/searches",
                    headers={"Authorization": f"Bearer {token}"},
                    files={"image": ("a.jpg", photo, "image/jpeg")},
                    data={"case_reference": "C-1", "purpose": "access test"},
                )
                assert r.status_code == 200, r.text
                searches[role] = r.json()["search_id"]
        yield World(client, app, tokens, photo, stranger, folder, searches, face_id)


# -- the matrix -------------------------------------------------------------------------------

Call = Callable[[World, str, dict[str, str]], Any]


def _search_id(w: World, who: str) -> str:
    # A role that may search uses its own search; others borrow one (refused before lookup).
    return w.searches.get(who) or w.searches["investigator"]


Need = str | Permission | tuple[Permission, ...]
ROUTES: dict[tuple[str, str], tuple[Need, Call]] = {
    ("GET", "/v1/health"): (PUBLIC, lambda w, who, h: w.client.get("/v1/health", headers=h)),
    ("GET", "/metrics"): (PUBLIC, lambda w, who, h: w.client.get("/metrics", headers=h)),
    ("GET", "/v1/me"): (ANY, lambda w, who, h: w.client.get("/v1/me", headers=h)),
    ("GET", "/v1/sources"): (ANY, lambda w, who, h: w.client.get("/v1/sources", headers=h)),
    ("POST", "/v1/sources"): (
        Permission.MANAGE_SOURCES,
        lambda w, who, h: w.client.post(
            "/v1/sources",
            headers=h,
            json={
                "name": f"src-{who}",
                "path": str(w.folder),
                "owner": "x",
                "legal_basis": "consent",
                "retention_days": 1,
            },
        ),
    ),
    ("POST", "/v1/probe/faces"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.post(
            "/v1/probe/faces", headers=h, files={"image": ("a.jpg", w.photo, "image/jpeg")}
        ),
    ),
    ("POST", "/v1/searches"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.post(
            "/v1/searches",
            headers=h,
            files={"image": ("a.jpg", w.photo, "image/jpeg")},
            data={"case_reference": "C-2", "purpose": "matrix"},
        ),
    ),
    ("GET", "/v1/searches/{search_id}/faces/{face_id}/thumbnail"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.get(
            f"/v1/searches/{_search_id(w, who)}/faces/{w.face_id}/thumbnail", headers=h
        ),
    ),
    ("GET", "/v1/searches/{search_id}/faces/{face_id}/original"): (
        Permission.VIEW_ORIGINALS,
        lambda w, who, h: w.client.get(
            f"/v1/searches/{_search_id(w, who)}/faces/{w.face_id}/original", headers=h
        ),
    ),
    ("POST", "/v1/ingest-jobs"): (
        Permission.INGEST,
        lambda w, who, h: w.client.post("/v1/ingest-jobs", headers=h, json={"source": "nasa"}),
    ),
    ("GET", "/v1/ingest-jobs"): (
        Permission.INGEST,
        lambda w, who, h: w.client.get("/v1/ingest-jobs", headers=h),
    ),
    ("GET", "/v1/ingest-jobs/{job_id}"): (
        Permission.INGEST,
        lambda w, who, h: w.client.get(f"/v1/ingest-jobs/{_own_job(w, who, h)}", headers=h),
    ),
    ("DELETE", "/v1/sources/{name}"): (
        Permission.DELETE,
        lambda w, who, h: w.client.delete(
            f"/v1/sources/{_throwaway_source(w)}", headers=h, params={"reason": "matrix"}
        ),
    ),
    ("POST", "/v1/erasures/faces"): (
        Permission.DELETE,
        lambda w, who, h: w.client.post(
            "/v1/erasures/faces", headers=h, json={"ids": [10**9], "reason": "matrix"}
        ),
    ),
    ("POST", "/v1/erasures/images"): (
        Permission.DELETE,
        lambda w, who, h: w.client.post(
            "/v1/erasures/images", headers=h, json={"ids": [10**9], "reason": "matrix"}
        ),
    ),
    ("POST", "/v1/erasures/person"): (
        Permission.DELETE,
        lambda w, who, h: w.client.post(
            "/v1/erasures/person", headers=h, files=_stranger(w), data={"reason": "matrix"}
        ),
    ),
    ("GET", "/v1/receipts"): (
        (Permission.DELETE, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get("/v1/receipts", headers=h),
    ),
    ("GET", "/v1/receipts/{receipt_id}/check"): (
        (Permission.DELETE, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get(f"/v1/receipts/{_a_receipt(w)}/check", headers=h),
    ),
    ("POST", "/v1/opt-outs"): (
        Permission.OPT_OUT,
        lambda w, who, h: w.client.post(
            "/v1/opt-outs", headers=h, files=_stranger(w), data={"reference": "matrix"}
        ),
    ),
    ("GET", "/v1/opt-outs"): (
        Permission.OPT_OUT,
        lambda w, who, h: w.client.get("/v1/opt-outs", headers=h),
    ),
    ("POST", "/v1/subject-access"): (
        Permission.SUBJECT_ACCESS,
        lambda w, who, h: w.client.post(
            "/v1/subject-access", headers=h, files=_person(w), data={"reference": "SAR"}
        ),
    ),
    ("POST", "/v1/retention/gc"): (
        Permission.RETENTION,
        lambda w, who, h: w.client.post("/v1/retention/gc", headers=h),
    ),
    ("GET", "/v1/audit"): (
        Permission.READ_AUDIT,
        lambda w, who, h: w.client.get("/v1/audit", headers=h, params={"limit": 5}),
    ),
    ("POST", "/v1/verifications"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.post(
            "/v1/verifications",
            headers=h,
            files=[
                ("image_a", ("a.jpg", w.photo, "image/jpeg")),
                ("image_b", ("b.jpg", w.photo, "image/jpeg")),
            ],
            data={"case_reference": "C-2", "purpose": "matrix"},
        ),
    ),
    ("POST", "/v1/searches/{search_id}/reviews"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.post(
            f"/v1/searches/{_search_id(w, who)}/reviews",
            headers=h,
            json={"face_id": w.face_id, "decision": "inconclusive", "note": "matrix"},
        ),
    ),
    ("GET", "/v1/cases/{case_ref}"): (
        (Permission.SEARCH, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get("/v1/cases/C-1", headers=h),
    ),
    ("GET", "/v1/audit/export"): (
        Permission.READ_AUDIT,
        lambda w, who, h: w.client.get("/v1/audit/export", headers=h, params={"format": "csv"}),
    ),
    ("GET", "/v1/persons"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.get("/v1/persons", headers=h),
    ),
    ("POST", "/v1/persons/build"): (
        Permission.MANAGE_PERSONS,
        lambda w, who, h: w.client.post("/v1/persons/build", headers=h, json={"rebuild": False}),
    ),
    ("GET", "/v1/persons/{person_id}"): (
        Permission.SEARCH,
        lambda w, who, h: w.client.get(f"/v1/persons/{_new_person(w)[0]}", headers=h),
    ),
    ("PUT", "/v1/persons/{person_id}/label"): (
        Permission.MANAGE_PERSONS,
        lambda w, who, h: w.client.put(
            f"/v1/persons/{_new_person(w)[0]}/label", headers=h, json={"label": "Case 9"}
        ),
    ),
    ("POST", "/v1/persons/{person_id}/merges"): (
        Permission.MANAGE_PERSONS,
        lambda w, who, h: w.client.post(
            f"/v1/persons/{_new_person(w)[0]}/merges",
            headers=h,
            json={"other": _new_person(w)[0]},
        ),
    ),
    ("POST", "/v1/persons/{person_id}/splits"): (
        Permission.MANAGE_PERSONS,
        lambda w, who, h: (
            lambda p: w.client.post(
                f"/v1/persons/{p[0]}/splits", headers=h, json={"face_ids": [p[1][0]]}
            )
        )(_new_person(w, 2)),
    ),
    ("DELETE", "/v1/persons/{person_id}/faces/{face_id}"): (
        Permission.MANAGE_PERSONS,
        lambda w, who, h: (
            lambda p: w.client.delete(f"/v1/persons/{p[0]}/faces/{p[1][0]}", headers=h)
        )(_new_person(w, 2)),
    ),
    ("GET", "/v1/persons/{person_id}/faces/{face_id}/thumbnail"): (
        Permission.SEARCH,
        lambda w, who, h: (
            lambda p: w.client.get(f"/v1/persons/{p[0]}/faces/{p[1][0]}/thumbnail", headers=h)
        )(_new_person(w)),
    ),
    ("POST", "/v1/watches"): (
        Permission.WATCH,
        lambda w, who, h: w.client.post(
            "/v1/watches",
            headers=h,
            files=_person(w),
            data={"case_reference": "W-1", "purpose": "matrix"},
        ),
    ),
    ("GET", "/v1/watches"): (
        (Permission.WATCH, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get("/v1/watches", headers=h),
    ),
    ("DELETE", "/v1/watches/{watch_id}"): (
        Permission.WATCH,
        lambda w, who, h: w.client.delete(f"/v1/watches/{_own_watch(w, who)}", headers=h),
    ),
    ("GET", "/v1/watches/{watch_id}/alerts"): (
        (Permission.WATCH, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get(f"/v1/watches/{_alerting(w)[0]}/alerts", headers=h),
    ),
    ("GET", "/v1/alerts"): (
        (Permission.WATCH, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get("/v1/alerts", headers=h),
    ),
    ("GET", "/v1/alerts/{alert_id}/thumbnail"): (
        (Permission.WATCH, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get(f"/v1/alerts/{_alerting(w)[1]}/thumbnail", headers=h),
    ),
    # privacy: tombstones, anchors, exports, subject access thumbnails
    ("GET", "/v1/tombstones"): (
        Permission.DELETE,
        lambda w, who, h: w.client.get("/v1/tombstones", headers=h),
    ),
    ("POST", "/v1/tombstone-lifts"): (
        Permission.DELETE,
        lambda w, who, h: w.client.post(
            "/v1/tombstone-lifts", headers=h, json={"target": _a_tombstone(w), "reason": "x"}
        ),
    ),
    ("POST", "/v1/audit/anchors"): (
        Permission.READ_AUDIT,
        lambda w, who, h: w.client.post("/v1/audit/anchors", headers=h),
    ),
    ("POST", "/v1/audit/verifications"): (
        Permission.READ_AUDIT,
        lambda w, who, h: w.client.post(
            "/v1/audit/verifications", headers=h, json={"anchors": [_head_line(w)]}
        ),
    ),
    ("POST", "/v1/exports"): (
        Permission.EXPORT,
        lambda w, who, h: w.client.post(
            "/v1/exports",
            headers=h,
            json={"source": "nasa", "case_reference": "C-3", "purpose": "matrix"},
        ),
    ),
    ("POST", "/v1/exports/searches"): (
        Permission.EXPORT,
        lambda w, who, h: w.client.post(
            "/v1/exports/searches",
            headers=h,
            files={"image": ("a.jpg", w.photo, "image/jpeg")},
            data={"case_reference": "C-5", "purpose": "matrix"},
        ),
    ),
    ("GET", "/v1/exports"): (
        (Permission.EXPORT, Permission.READ_AUDIT),
        lambda w, who, h: w.client.get("/v1/exports", headers=h),
    ),
    ("GET", "/v1/exports/{export_id}/csv"): (
        Permission.EXPORT,
        lambda w, who, h: w.client.get(f"/v1/exports/{_an_export(w)}/csv", headers=h),
    ),
    ("GET", "/v1/subject-access/{access_id}/faces/{face_id}/thumbnail"): (
        Permission.SUBJECT_ACCESS,
        lambda w, who, h: w.client.get(_own_access_thumbnail(w, who), headers=h),
    ),
}


def _new_person(w: World, faces: int = 1) -> tuple[int, list[int]]:
    """A person of its own over new faces of a new image: (person id, face ids)."""
    from faceindex.persons.base import Placement
    from tests.contract.builders import face, outcome

    catalog = w.app.state.faceindex.governance.engine.catalog
    n = time.monotonic_ns()
    src = catalog.get_source("nasa").id
    found = catalog.record(
        [outcome(src, f"p-{n}.jpg", f"p-{n}", tuple(face(n % 10**6 + i) for i in range(faces)))],
        "matrix",
    )
    faces_of = [fid for fid, _ in found]
    (person,) = catalog.assign_persons([Placement(None, tuple(faces_of))])
    return person, faces_of


def _own_watch(w: World, who: str) -> int:
    """A watch the caller made (for a role that may watch), else the investigator's."""
    owner = who if who in ("admin", "investigator") else "investigator"
    r = w.client.post(
        "/v1/watches",
        headers=_h(w, owner),
        files=_person(w),
        data={"case_reference": "W-2", "purpose": "matrix"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


_ALERTING: dict[str, tuple[int, int]] = {}


def _alerting(w: World) -> tuple[int, int]:
    """(watch id, alert id) of the investigator's: a watch on the photo, then another copy of
    the face (other bytes) ingested from a new source through the ingest-jobs API."""
    if "made" in _ALERTING:
        return _ALERTING["made"]
    from PIL import Image

    watch = _own_watch(w, "investigator")
    folder = w.folder.parent / "later"
    folder.mkdir(exist_ok=True)
    Image.open(io.BytesIO(w.photo)).save(folder / "again.jpg", format="JPEG", quality=70)
    r = w.client.post(
        "/v1/sources",
        headers=_h(w, "admin"),
        json={
            "name": "later",
            "path": str(folder),
            "owner": "x",
            "legal_basis": "consent",
            "retention_days": 1,
        },
    )
    assert r.status_code == 201, r.text
    job = w.client.post("/v1/ingest-jobs", headers=_h(w, "admin"), json={"source": "later"})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = w.client.get(f"/v1/ingest-jobs/{job.json()['id']}", headers=_h(w, "admin"))
        if status.json()["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status.json()["status"] == "done", status.text
    alerts = w.client.get(f"/v1/watches/{watch}/alerts", headers=_h(w, "investigator")).json()
    assert alerts, "the copy of the watched face raised no alert"
    _ALERTING["made"] = (watch, int(alerts[0]["id"]))
    return _ALERTING["made"]


def _a_tombstone(w: World) -> str:
    """A receipt id holding one tombstone: a faceless image only its own source held."""
    folder = w.folder.parent / f"tomb-{time.monotonic_ns()}"
    folder.mkdir()
    noise = np.random.default_rng(time.monotonic_ns()).integers(0, 255, (48, 48, 3), np.uint8)
    (folder / "n.jpg").write_bytes(to_jpeg(noise))
    gov = w.app.state.faceindex.governance
    gov.add_source(
        folder.name, path=str(folder), owner="x", legal_basis="consent", retention_days=1
    )
    gov.ingest(folder.name, in_process=True)
    return str(gov.erase_source(folder.name, reason="matrix").id)


def _head_line(w: World) -> str:
    return str(w.app.state.faceindex.governance.audit.head().to_line())


def _an_export(w: World) -> str:
    r = w.client.post(
        "/v1/exports",
        headers=_h(w, "admin"),
        json={"source": "nasa", "case_reference": "C-4", "purpose": "matrix"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _own_access_thumbnail(w: World, who: str) -> str:
    """A thumbnail link from the caller's own subject access (for a role that may make
    one), else from an admin's (refused before any lookup)."""
    owner = who if who in ("admin", "privacy-officer") else "admin"
    r = w.client.post(
        "/v1/subject-access", headers=_h(w, owner), files=_person(w), data={"reference": "SAR"}
    )
    assert r.status_code == 200 and r.json(), r.text
    return str(r.json()[0]["thumbnail_url"])


def _person(w: World) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", ("p.jpg", w.photo, "image/jpeg"))]


def _stranger(w: World) -> list[tuple[str, tuple[str, bytes, str]]]:
    """A photo of someone not in the gallery: erasing or opting them out removes nothing."""
    return [("images", ("s.jpg", w.stranger, "image/jpeg"))]


def _throwaway_source(w: World) -> str:
    name = f"tmp-{time.monotonic_ns()}"
    r = w.client.post(
        "/v1/sources",
        headers=_h(w, "admin"),
        json={
            "name": name,
            "path": str(w.folder),
            "owner": "x",
            "legal_basis": "consent",
            "retention_days": 1,
        },
    )
    assert r.status_code == 201, r.text
    return name


def _a_receipt(w: World) -> str:
    r = w.client.post(
        "/v1/erasures/faces", headers=_h(w, "admin"), json={"ids": [10**9], "reason": "x"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _own_job(w: World, who: str, headers: dict[str, str]) -> str:
    """A job id the caller started (for a role that may ingest), else any real job id."""
    owner = who if who in ("admin", "admin2") else "admin"
    r = w.client.post(
        "/v1/ingest-jobs",
        headers={"Authorization": f"Bearer {w.tokens[owner]}"},
        json={"source": "nasa"},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_the_matrix_covers_every_api_route(world: World) -> None:
    paths = world.app.openapi()["paths"]
    served = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert served == set(ROUTES), f"routes without a matrix entry: {served ^ set(ROUTES)}"


CALLERS = [r.value for r in Role] + ["no-token", "revoked", "bad-token"]


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_only_permitted_calls_succeed(world: World, who: str, route: tuple[str, str]) -> None:
    need, call = ROUTES[route]
    needs = need if isinstance(need, tuple) else (need,)
    headers = {}
    if who in world.tokens:
        headers["Authorization"] = f"Bearer {world.tokens[who]}"
    elif who == "bad-token":
        headers["Authorization"] = "Bearer fi_forged"
    response = call(world, who, headers)
    signed_in = who in [r.value for r in Role]
    if need == PUBLIC:
        allowed = True
    elif need == ANY:
        allowed = signed_in
    else:
        allowed = signed_in and any(p in ROLE_PERMISSIONS[Role(who)] for p in needs)
    if allowed:
        assert response.status_code < 300, (route, who, response.status_code, response.text)
    else:
        expected = 403 if signed_in else 401
        assert response.status_code == expected, (route, who, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


# -- other users' objects -----------------------------------------------------------------


def _h(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def test_another_admins_ingest_job_is_not_found(world: World) -> None:
    job = world.client.post("/v1/ingest-jobs", headers=_h(world, "admin"), json={"source": "nasa"})
    job_id = job.json()["id"]
    mine = world.client.get(f"/v1/ingest-jobs/{job_id}", headers=_h(world, "admin"))
    assert mine.status_code == 200
    theirs = world.client.get(f"/v1/ingest-jobs/{job_id}", headers=_h(world, "admin2"))
    assert theirs.status_code == 404
    listed = world.client.get("/v1/ingest-jobs", headers=_h(world, "admin2")).json()
    assert job_id not in {j["id"] for j in listed}


@pytest.mark.parametrize("kind", ["thumbnail", "original"])
@pytest.mark.parametrize("intruder", ["investigator2", "admin"])
def test_another_users_search_results_are_not_served(
    world: World, kind: str, intruder: str
) -> None:
    url = f"/v1/searches/{world.searches['investigator']}/faces/{world.face_id}/{kind}"
    assert world.client.get(url, headers=_h(world, "investigator")).status_code == 200
    assert world.client.get(url, headers=_h(world, intruder)).status_code == 404


def test_a_face_not_in_the_callers_results_is_not_served(world: World) -> None:
    other = world.face_id + 1000
    url = f"/v1/searches/{world.searches['investigator']}/faces/{other}/thumbnail"
    assert world.client.get(url, headers=_h(world, "investigator")).status_code == 404


def test_another_investigators_watches_and_alerts_are_not_found(world: World) -> None:
    watch, alert = _alerting(world)
    mine = world.client.get(f"/v1/watches/{watch}/alerts", headers=_h(world, "investigator"))
    assert mine.status_code == 200 and mine.json()
    for url in (f"/v1/watches/{watch}/alerts", f"/v1/alerts/{alert}/thumbnail"):
        assert world.client.get(url, headers=_h(world, "investigator2")).status_code == 404
    assert (
        world.client.delete(f"/v1/watches/{watch}", headers=_h(world, "investigator2")).status_code
        == 404
    )
    theirs = world.client.get("/v1/alerts", headers=_h(world, "investigator2")).json()
    assert alert not in {a["id"] for a in theirs}
    listed = world.client.get("/v1/watches", headers=_h(world, "investigator2")).json()
    assert watch not in {x["id"] for x in listed}
    assert alert in {
        a["id"] for a in world.client.get("/v1/alerts", headers=_h(world, "auditor")).json()
    }


def test_a_revoked_token_stops_working_at_once(world: World, tmp_path: Path) -> None:
    from faceindex.server.accounts import AccountStore

    store = AccountStore.for_home(world.app.state.faceindex.settings.home)
    token = store.add(f"temp-{time.monotonic_ns()}", Role.AUDITOR)
    assert (
        world.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    store.revoke(_name_of(store, token))
    store.close()
    assert (
        world.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def _name_of(store: Any, token: str) -> str:
    account = store.authenticate(token)
    assert account is not None
    return str(account.name)
