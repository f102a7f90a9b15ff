"""The hash-chained audit log: tampering is found at the right entry; writes fail loudly."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from faceindex.errors import AuditError, InputError
from faceindex.governance.audit import AuditEvent, AuditLog, verify_jsonl

pytestmark = pytest.mark.unit


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(
            AuditEvent(
                "search",
                "ana",
                "investigator",
                case=f"C-{i}",
                purpose="fraud",
                probe_sha256="ab" * 32,
                sources=("archive",),
                face_ids=(i, i + 1),
            )
        )


def _tamper(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """What an administrator with file access could do: drop the guards, then edit."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute(sql, params)
    db.commit()
    db.close()


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.db")
    _fill(audit, 6)
    return audit


def test_intact_log_verifies_and_survives_reopen(log: AuditLog, tmp_path: Path) -> None:
    report = log.verify()
    assert report.ok and report.entries == 6
    log.close()
    again = AuditLog(tmp_path / "audit.db")
    assert again.verify().ok
    entry = again.get(3)
    assert entry is not None and entry.event.case == "C-2" and entry.event.face_ids == (2, 3)
    assert again.append(AuditEvent("ingest", "ana", "admin")).seq == 7


def test_entries_chain_to_each_other(log: AuditLog) -> None:
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert all(b.prev == a.hash for a, b in zip(entries, entries[1:], strict=False))


def test_the_table_refuses_update_and_delete(log: AuditLog, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "audit.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET body = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    db.close()


def test_an_edited_entry_is_named(log: AuditLog, tmp_path: Path) -> None:
    body = json.loads(log._db.execute("SELECT body FROM audit WHERE seq = 4").fetchone()[0])
    body["case"] = "C-innocent"
    _tamper(tmp_path / "audit.db", "UPDATE audit SET body = ? WHERE seq = 4", (json.dumps(body),))
    report = AuditLog(tmp_path / "audit.db").verify()
    assert not report.ok and report.first_bad == 4 and "edited" in report.reason


def test_a_removed_entry_is_named(log: AuditLog, tmp_path: Path) -> None:
    _tamper(tmp_path / "audit.db", "DELETE FROM audit WHERE seq = 3")
    report = AuditLog(tmp_path / "audit.db").verify()
    # The 3rd stored entry is now the old 4th: its seq and its link both give it away.
    assert not report.ok and report.first_bad == 3


def test_reordered_entries_are_named(log: AuditLog, tmp_path: Path) -> None:
    rows = log._db.execute("SELECT seq, body, prev, hash FROM audit WHERE seq IN (2, 5)").fetchall()
    (_, b2, p2, h2), (_, b5, p5, h5) = rows
    path = tmp_path / "audit.db"
    _tamper(path, "UPDATE audit SET body = ?, prev = ?, hash = ? WHERE seq = 2", (b5, p5, h5))
    db = sqlite3.connect(path)
    db.execute("UPDATE audit SET body = ?, prev = ?, hash = ? WHERE seq = 5", (b2, p2, h2))
    db.commit()
    db.close()
    report = AuditLog(path).verify()
    assert not report.ok and report.first_bad == 2


def test_a_truncated_tail_is_caught_by_the_head_anchor(log: AuditLog, tmp_path: Path) -> None:
    _tamper(tmp_path / "audit.db", "DELETE FROM audit WHERE seq >= 5")
    report = AuditLog(tmp_path / "audit.db").verify()
    assert not report.ok and "truncated" in report.reason


def test_exported_jsonl_verifies_offline_and_names_an_edited_line(log: AuditLog) -> None:
    buf = io.StringIO()
    assert log.export(buf, "jsonl") == 6
    lines = buf.getvalue().splitlines()
    assert verify_jsonl(lines).ok
    edited = json.loads(lines[4])
    edited["actor"] = "someone-else"
    lines[4] = json.dumps(edited)
    report = verify_jsonl(lines)
    assert not report.ok and report.first_bad == 5
    lines[4] = "{not json"
    assert verify_jsonl(lines).first_bad == 5
    assert verify_jsonl(lines[:2] + lines[3:]).first_bad == 3  # a removed line


def test_csv_export_has_one_row_per_entry(log: AuditLog) -> None:
    buf = io.StringIO()
    assert log.export(buf, "csv") == 6
    rows = buf.getvalue().splitlines()
    assert rows[0].startswith("seq,at,action,actor,role,case,purpose")
    assert len(rows) == 7 and ",C-5," in rows[6]
    with pytest.raises(InputError):
        log.export(io.StringIO(), "xml")


def test_a_failed_write_raises_audit_error(log: AuditLog) -> None:
    log.close()
    with pytest.raises(AuditError):
        log.append(AuditEvent("search", "ana", "investigator"))


def test_unknown_actions_are_refused(log: AuditLog) -> None:
    with pytest.raises(InputError):
        log.append(AuditEvent("coffee", "ana", "admin"))
