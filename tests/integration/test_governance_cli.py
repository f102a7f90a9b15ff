"""The governance commands as a user runs them (typer's runner, real engine home)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceindex.cli import app
from tests.conftest import to_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"FACEINDEX_WORKERS": "1"})
    return result.exit_code, result.output


def test_audit_verify_names_an_edited_entry_live_and_in_an_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init")[0] == 0
    for _ in range(3):
        assert run(home, "gc")[0] == 0  # each run appends 'retention' to the log
    code, out = run(home, "audit", "verify")
    assert code == 0 and "intact" in out
    exported = tmp_path / "audit.jsonl"
    assert run(home, "audit", "export", "--out", str(exported))[0] == 0
    lines = exported.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["actor"] = "nobody"
    lines[2] = json.dumps(entry)
    exported.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        app, ["audit", "verify", "--file", str(exported), "--home", str(home)]
    )
    assert result.exit_code == 1 and "entry 3" in result.output
    # The live log, edited behind the guards' back.
    db = sqlite3.connect(home / "audit.db")
    db.execute("DROP TRIGGER audit_no_update")
    body = json.loads(db.execute("SELECT body FROM audit WHERE seq = 2").fetchone()[0])
    body["outcome"] = "denied"
    db.execute("UPDATE audit SET body = ? WHERE seq = 2", (json.dumps(body),))
    db.commit()
    db.close()
    code, out = run(home, "audit", "verify")
    assert code == 1 and "entry 2" in out and "edited" in out


def test_search_needs_case_and_purpose_and_erase_verify_checks_a_receipt(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    home, photos = tmp_path / "home", tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(to_jpeg(astronaut))
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(to_jpeg(astronaut, quality=80))
    assert run(home, "init")[0] == 0
    code, _ = run(
        home, "sources", "add", "press", "--path", str(photos), "--owner", "o",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert code == 0
    assert run(home, "ingest", "press")[0] == 0
    code, out = run(home, "search", str(probe), "--case", " ", "--purpose", "x")
    assert code == 2 and "case reference" in out
    code, out = run(home, "search", str(probe), "--case", "C-1", "--purpose", "check")
    assert code == 0
    code, out = run(home, "erase", "person", str(probe), "--json")
    receipt = json.loads(out)
    assert code == 0 and receipt["faces_deleted"] >= 1
    code, out = run(home, "erase", "verify", receipt["id"])
    assert code == 0 and "verified" in out
    code, out = run(home, "search", str(probe), "--case", "C-1", "--purpose", "check", "--largest")
    assert code == 1  # no match for her face any more
    code, out = run(home, "audit", "export", "--format", "csv")
    actions = [line.split(",")[2] for line in out.splitlines()[1:]]
    # registering the source is audited too; a refused search is not run
    assert actions[:4] == ["source-add", "ingest", "ingest", "search"]
    assert "deletion" in actions and "receipt-verify" in actions
