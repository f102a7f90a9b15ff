"""faceindex watch as a user runs it (typer's runner, real engine home, real models): add a
watch from a photo, ingest another copy of the face, read the alert, remove, purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from tests.conftest import to_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def run(home: Path, *args: str, role: str = "admin", actor: str = "ivy") -> tuple[int, str]:
    env = {"FACEINDEX_WORKERS": "1", "FACEINDEX_ACTOR_ROLE": role, "FACEINDEX_ACTOR": actor}
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env=env)
    return result.exit_code, result.output


def test_watch_add_alerts_list_remove(tmp_path: Path, astronaut: np.ndarray) -> None:
    home, photos = tmp_path / "home", tmp_path / "photos"
    photos.mkdir()
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(to_jpeg(astronaut, quality=80))
    assert run(home, "init")[0] == 0
    code, out = run(
        home, "sources", "add", "press", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0, out

    code, out = run(home, "watch", "add", str(probe), "--case", "C-9", "--purpose", "p")
    assert code == 0 and "watch 1 for case C-9" in out, out
    code, out = run(home, "watch", "add", str(probe), "--case", "C-9", "--purpose", "p",
                    "--expires-days", "9999")  # fmt: skip
    assert code == 2 and "1 to 365 days" in out
    code, out = run(home, "watch", "add", str(probe), "--case", "C", "--purpose", "p",
                    "--sources", "press,elsewhere")  # fmt: skip
    assert code == 2 and "elsewhere" in out
    code, out = run(home, "watch", "add", str(probe), "--case", "C", "--purpose", "p",
                    role="auditor")  # fmt: skip
    assert code == 6 and "watch" in out  # refused: an auditor keeps no watches

    (photos / "a.jpg").write_bytes(to_jpeg(astronaut, quality=95))  # other bytes, same face
    code, out = run(home, "ingest", "press")
    assert code == 0 and "1 new faces alerted a watch" in out, out

    code, out = run(home, "watch", "alerts", "1", "--json")
    assert code == 0, out
    (alert,) = json.loads(out)
    assert alert["watch_id"] == 1 and alert["band"] in ("match", "possible")
    assert alert["locations"][0]["source"] == "press"
    assert alert["locations"][0]["locator"] == "a.jpg" and alert["held"]
    assert "embedding" not in out and "templates" not in alert
    code, out = run(home, "watch", "alerts", role="investigator", actor="someone-else")
    assert code == 0 and "0 alerts" in out  # another investigator's alerts are not theirs
    code, out = run(home, "watch", "alerts", role="auditor", actor="aud")
    assert code == 0 and "1 alerts" in out

    code, out = run(home, "watch", "list", "--json")
    (watch,) = json.loads(out)
    assert watch["state"] == "live" and watch["templates"] == 1 and watch["owner"] == "ivy"
    assert run(home, "watch", "remove", "1")[0] == 0
    code, out = run(home, "watch", "list")
    assert code == 0 and "removed" in out
    code, out = run(home, "watch", "remove", "1")
    assert code == 2 and "already ended" in out
    code, out = run(home, "watch", "purge")
    assert code == 0 and "0 expired watches purged" in out
    code, out = run(home, "audit", "export", "--out", str(tmp_path / "a.jsonl"))
    assert code == 0
    actions = [json.loads(x)["action"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    for action in ("watch-add", "watch-alert", "watch-alerts", "watch-remove", "watch-purge"):
        assert action in actions
