"""The exception tree maps once to problem+json statuses."""

from __future__ import annotations

import json

import pytest

from faceindex import errors as e
from faceindex.server.concurrency import Busy, TimedOut
from faceindex.server.errors import RateLimited, Unauthorized, problem_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (e.NotFoundError("x"), 404),
        (e.InputError("x"), 400),
        (e.DecodeError("x"), 422),
        (e.NoFaceError("x"), 422),
        (e.ImageTooLarge("x"), 413),
        (e.PermissionDenied("x"), 403),
        (e.SourceRefused("x"), 403),
        (e.AuditError("x"), 503),
        (e.StorageError("x"), 503),
        (Unauthorized("x"), 401),
        (RateLimited(3), 429),
        (Busy(1), 429),
        (TimedOut("x"), 503),
    ],
)
def test_each_error_has_one_status(exc: Exception, status: int) -> None:
    response = problem_for(exc)
    body = json.loads(bytes(response.body))
    assert response.status_code == status == body["status"]
    assert response.media_type == "application/problem+json"
    assert body["detail"] == str(exc)


def test_retry_after_and_www_authenticate() -> None:
    assert problem_for(RateLimited(7)).headers["retry-after"] == "7"
    assert problem_for(Busy(1)).headers["retry-after"] == "1"
    assert problem_for(Unauthorized("x")).headers["www-authenticate"] == "Bearer"


def test_an_unexpected_error_tells_the_client_nothing() -> None:
    response = problem_for(KeyError("secret internals"))
    body = json.loads(bytes(response.body))
    assert response.status_code == 500 and "secret" not in json.dumps(body)
