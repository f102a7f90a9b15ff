"""HTTP conformance the OpenAPI schema cannot state: 413 for chunked uploads, a 405's full
``Allow``, control characters refused in text fields, failed sign-ins rate limited by
address, and API docs that load nothing from another origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceindex.config import Settings

pytestmark = pytest.mark.integration

MAX_BYTES = 100_000


def build_app(root: Path, **overrides: Any) -> tuple[Any, dict[str, str]]:
    """An app over an empty engine home (no models are loaded: nothing here reaches them)."""
    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    settings = Settings.load(root / "home", workers=1, max_bytes=MAX_BYTES, **overrides)
    engine = Engine.open(settings, create=True)
    store = AccountStore.for_home(settings.home)
    tokens = {r: store.add(f"{r}-1", r) for r in ("admin", "investigator", "auditor")}
    store.close()
    return create_app(settings, engine=engine), tokens


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app, tokens = build_app(tmp_path_factory.mktemp("conformance"), rate_limit_burst=10_000)
    with TestClient(app) as client:
        yield client, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def multipart(boundary: str, size: int) -> Iterator[bytes]:
    """A search form whose photo is ``size`` bytes, sent in 16 KB chunks (no length)."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="case_reference"\r\n\r\nC-1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\ntest\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    for _ in range(size // 16384):
        yield b"\xff" * 16384
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_chunked_oversize_upload_is_413_with_a_reason(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/searches",
        headers={
            **bearer(tokens["investigator"]),
            "content-type": "multipart/form-data; boundary=xyz",
        },
        content=multipart("xyz", 4 * MAX_BYTES),
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    body = problem(r, 413)
    assert body["type"].endswith(":too-large") and "limited to" in body["detail"]


def test_a_declared_oversize_upload_is_413_too(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/searches",
        headers=bearer(tokens["investigator"]),
        files={"image": ("p.jpg", b"\xff" * (4 * MAX_BYTES), "image/jpeg")},
        data={"case_reference": "C-1", "purpose": "test"},
    )
    assert problem(r, 413)["type"].endswith(":too-large")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/v1/sources", {"GET", "POST"}),
        ("patch", "/v1/opt-outs", {"GET", "POST"}),
        ("post", "/v1/ingest-jobs/0123456789abcdef01234567", {"GET"}),
        ("put", "/v1/watches", {"GET", "POST"}),
        ("post", "/v1/watches/7", {"DELETE"}),
        ("delete", "/v1/alerts", {"GET"}),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    api: Any, method: str, path: str, allowed: set[str]
) -> None:
    client, tokens = api
    r = getattr(client, method)(path, headers=bearer(tokens["admin"]))
    problem(r, 405)
    assert set(re.split(r",\s*", r.headers["allow"])) - {"HEAD"} == allowed


@pytest.mark.parametrize(
    "value",
    [
        "CASE\x00-7",
        "CASE-7\x00",
        "CASE\n7",
        "CASE-7\n",
        "CASE\r\n7",
        "CASE\t7",
        "CASE\x1b[31m7",
        "CASE\x857",
    ],
    ids=["nul", "trailing-nul", "newline", "trailing-newline", "crlf", "tab", "escape", "c1"],
)
def test_control_characters_in_case_reference_are_refused(api: Any, value: str) -> None:
    client, tokens = api
    r = client.post(
        "/v1/searches",
        headers=bearer(tokens["investigator"]),
        files={"image": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
        data={"case_reference": value, "purpose": "test"},
    )
    assert "case_reference" in problem(r, 422)["detail"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"case_reference": "W\n1", "purpose": "p"}, "case_reference"),
        ({"case_reference": "W-1", "purpose": "p", "expires_days": "0"}, "expires_days"),
        ({"case_reference": "W-1", "purpose": "p", "sources": "no/such"}, "sources"),
    ],
    ids=["control-character", "no-expiry", "bad-source-name"],
)
def test_a_bad_watch_is_refused_with_the_field_named(
    api: Any, form: dict[str, str], field: str
) -> None:
    client, tokens = api
    r = client.post(
        "/v1/watches",
        headers=bearer(tokens["investigator"]),
        files={"images": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
        data=form,
    )
    assert field in problem(r, 422)["detail"]


def test_a_watch_photo_without_a_face_is_a_problem(api: Any) -> None:
    import io

    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, format="JPEG")
    client, tokens = api
    r = client.post(
        "/v1/watches",
        headers=bearer(tokens["investigator"]),
        files={"images": ("p.jpg", blank.getvalue(), "image/jpeg")},
        data={"case_reference": "W-1", "purpose": "p"},
    )
    assert "no face" in problem(r, 422)["detail"]
    assert client.get("/v1/watches", headers=bearer(tokens["investigator"])).json() == []


def test_control_characters_in_casework_text_are_refused(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/verifications",
        headers=bearer(tokens["investigator"]),
        files=[("image_a", ("a.jpg", b"\xff\xd8\xff", "image/jpeg")),
               ("image_b", ("b.jpg", b"\xff\xd8\xff", "image/jpeg"))],
        data={"case_reference": "CASE\x007", "purpose": "test"},
    )  # fmt: skip
    assert "case_reference" in problem(r, 422)["detail"]
    r = client.post(
        f"/v1/searches/{'0' * 24}/reviews",
        headers=bearer(tokens["investigator"]),
        json={"face_id": 1, "decision": "rejected", "note": "see\x1b[31m"},
    )
    assert "note" in problem(r, 422)["detail"]
    r = client.get("/v1/cases/CASE%1B7", headers=bearer(tokens["auditor"]))
    assert "case_ref" in problem(r, 422)["detail"]
    # A newline ends the path match itself: no route, a 404 problem (never a 5xx)
    problem(client.get("/v1/cases/CASE%0A7", headers=bearer(tokens["auditor"])), 404)


def test_control_characters_in_a_reason_are_refused(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/erasures/faces",
        headers=bearer(tokens["admin"]),
        json={"ids": [1], "reason": "tidy\x00up"},
    )
    assert "reason" in problem(r, 422)["detail"]


def test_ordinary_text_still_passes(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/erasures/faces",
        headers=bearer(tokens["admin"]),
        json={"ids": [987654], "reason": "Löschung nach Art. 17 — Fall «7»"},
    )
    assert r.status_code != 422, r.text  # past validation (no such face: not a 422)


def test_forged_tokens_are_rate_limited_by_address(tmp_path: Path) -> None:
    app, tokens = build_app(tmp_path, rate_limit_burst=3, rate_limit_per_minute=6)
    with TestClient(app) as client:
        codes = [client.get("/v1/me", headers=bearer(f"forged-{i}")).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        r = client.get("/v1/me", headers=bearer("forged-x"))
        assert "failed sign-ins" in problem(r, 429)["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 10
        # Past the limit even a real token from that address waits: a guess that happens to
        # be right must not be told apart from a wrong one.
        assert client.get("/v1/me", headers=bearer(tokens["admin"])).status_code == 429
        assert client.get("/v1/me").status_code == 429  # no token at all: the same
        # Another address has its own bucket; signed-in requests do not spend the failures'.
        other = TestClient(app, client=("192.0.2.7", 5000))  # same app, already started
        for _ in range(3):
            assert other.get("/v1/me", headers=bearer(tokens["auditor"])).status_code == 200
        assert other.get("/v1/me", headers=bearer("forged")).status_code == 401


# -- API docs with no internet ------------------------------------------------------------

URL_ATTR = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_only_same_origin_assets(api: Any, page: str) -> None:
    client, _ = api
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    urls = URL_ATTR.findall(r.text)
    assert urls, r.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url}"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    assert "cdn" not in r.text.lower() and "https://" not in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert any(u.endswith(".js") for u in urls)


def test_swagger_ui_does_not_call_the_online_validator(api: Any) -> None:
    client, _ = api
    assert '"validatorUrl": null' in client.get("/docs").text


def test_a_watch_needs_photos_or_a_person(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/v1/watches",
        headers=bearer(tokens["investigator"]),
        data={"case_reference": "W-1", "purpose": "p"},
    )
    assert "person id" in problem(r, 400)["detail"]
    r = client.post(
        "/v1/watches",
        headers=bearer(tokens["investigator"]),
        data={"case_reference": "W-1", "purpose": "p", "person_id": "999999"},
    )
    assert problem(r, 404)["detail"]  # no such person
