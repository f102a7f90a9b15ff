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


def _forge_entry(home: Path, seq: int) -> None:
    """Edit one entry and re-hash it and all later ones, as a forger without the key can."""
    from faceindex.governance.audit_chain import canonical, chain_hash

    db = sqlite3.connect(home / "audit.db")
    db.execute("DROP TRIGGER audit_no_update")
    prev = db.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for n, body in db.execute("SELECT seq, body FROM audit WHERE seq >= ?", (seq,)).fetchall():
        data = json.loads(body)
        if n == seq:
            data["actor"] = "nobody"
        own = chain_hash(prev, data)
        db.execute(
            "UPDATE audit SET body = ?, prev = ?, hash = ? WHERE seq = ?",
            (canonical(data), prev, own, n),
        )
        prev = own
    db.commit()
    db.close()


def _entries(home: Path) -> int:
    db = sqlite3.connect(home / "audit.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    finally:
        db.close()


def test_a_failed_audit_verify_appends_nothing_so_the_next_one_fails_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init")[0] == 0
    for _ in range(3):
        assert run(home, "gc")[0] == 0
    _forge_entry(home, 2)
    before = _entries(home)
    for _ in range(2):
        code, out = run(home, "audit", "verify")
        assert code == 1 and "entry 2" in out
    assert _entries(home) == before
    assert run(home, "gc")[0] == 0  # later work is still audited...
    code, out = run(home, "audit", "verify")
    assert code == 1 and "entry 2" in out  # ...and does not launder the edit
    assert run(home, "audit", "anchor", "--out", str(tmp_path / "a.jsonl"))[0] != 0


def test_anchors_kept_elsewhere_catch_a_cut_log_with_an_old_head_put_back(tmp_path: Path) -> None:
    home, anchors = tmp_path / "home", tmp_path / "elsewhere" / "anchors.jsonl"
    anchors.parent.mkdir()
    assert run(home, "init")[0] == 0
    assert run(home, "gc")[0] == 0
    old_head = (home / "audit.head").read_text()
    assert run(home, "audit", "anchor", "--out", str(anchors))[0] == 0
    assert run(home, "gc")[0] == 0
    assert run(home, "audit", "anchor", "--out", str(anchors))[0] == 0
    assert len(anchors.read_text().splitlines()) == 2
    code, out = run(home, "audit", "verify", "--anchor", str(anchors))
    assert code == 0 and "2 anchored heads matched" in out and "inside the engine home" in out
    db = sqlite3.connect(home / "audit.db")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq > 2")
    db.commit()
    db.close()
    (home / "audit.head").write_text(old_head)
    assert run(home, "audit", "verify")[0] == 0  # the home alone cannot tell
    code, out = run(home, "audit", "verify", "--anchor", str(anchors))
    assert code == 1 and "truncated" in out


def test_a_key_from_the_environment_is_not_written_into_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"FACEINDEX_WORKERS": "1", "FACEINDEX_AUDIT_KEY": "ab" * 32}
    invoke = CliRunner().invoke
    assert invoke(app, ["init", "--home", str(home)], env=env).exit_code == 0
    assert invoke(app, ["gc", "--home", str(home)], env=env).exit_code == 0
    assert not (home / "audit.key").exists()
    result = invoke(app, ["audit", "verify", "--home", str(home)], env=env)
    assert result.exit_code == 0 and "keyed" in result.output
    assert "inside the engine home" not in result.output
    code, out = run(home, "audit", "verify")  # without it, a new key is not the log's key
    assert code == 5 and "keyed with key" in " ".join(out.split())  # rich wraps long paths
