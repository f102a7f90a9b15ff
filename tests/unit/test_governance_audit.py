"""The hash-chained audit log: tampering is found at the right entry; writes fail loudly."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from faceindex.errors import AuditError, InputError
from faceindex.governance.audit import AuditEvent, AuditHead, AuditLog, verify_jsonl
from faceindex.governance.audit_chain import GENESIS, canonical, chain_hash

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


# -- forgery, laundering, the key and anchors (issue 9, item 15) -----------------------------

KEY = bytes(range(32))


def _forge(path: Path, edit_seq: int, key: bytes | None = None) -> str:
    """What a forger holding the file (and ``key``, if given) does: edit one entry, re-hash
    it and every later one so the chain is self-consistent. Returns the new last hash."""
    db = sqlite3.connect(path)
    for trigger in ("audit_no_update", "audit_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    rows = db.execute("SELECT seq, body FROM audit ORDER BY seq").fetchall()
    prev = (
        GENESIS
        if edit_seq == 1
        else db.execute("SELECT hash FROM audit WHERE seq = ?", (edit_seq - 1,)).fetchone()[0]
    )
    for seq, body in rows[edit_seq - 1 :]:
        data = json.loads(body)
        if seq == edit_seq:
            data["case"] = "C-innocent"
        own = chain_hash(prev, data, key)
        db.execute(
            "UPDATE audit SET body = ?, prev = ?, hash = ? WHERE seq = ?",
            (canonical(data), prev, own, seq),
        )
        prev = own
    db.commit()
    db.close()
    return str(prev)


def _forge_append(path: Path, prev: str, key: bytes | None = None) -> str:
    db = sqlite3.connect(path)
    seq = db.execute("SELECT MAX(seq) FROM audit").fetchone()[0] + 1
    body = {"seq": seq, "at": "2026-01-01T00:00:00+00:00", "action": "search", "actor": "x",
            "role": "admin", "case": "", "purpose": "", "probe_sha256": "", "sources": [],
            "face_ids": [], "outcome": "ok", "details": {}}  # fmt: skip
    own = chain_hash(prev, body, key)
    db.execute("INSERT INTO audit VALUES (?,?,?,?)", (seq, canonical(body), prev, own))
    db.commit()
    db.close()
    return own


def test_an_edit_rehashed_with_one_row_appended_is_caught(log: AuditLog, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _forge_append(path, _forge(path, 3))  # the head still names entry 6, now rewritten
    report = AuditLog(path).verify()
    assert not report.ok and report.first_bad == 6 and "anchored head" in report.reason


def test_a_forger_without_the_key_cannot_rewrite_a_keyed_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    keyed = AuditLog(path, key=KEY)
    _fill(keyed, 6)
    assert keyed.verify().ok and keyed.verify().keyed
    last = _forge(path, 3)  # re-hashed without the key
    report = AuditLog(path, key=KEY).verify()
    assert not report.ok and report.first_bad == 3 and "keyed hash" in report.reason
    (tmp_path / "audit.head").write_text(f"6 {last}\n")  # and an unsigned head over it
    report = AuditLog(path, key=KEY).verify()
    assert not report.ok and "not signed" in report.reason
    forged = AuditHead(6, last, 1).signed(b"a key the forger made up!")
    (tmp_path / "audit.head").write_text(forged.to_line() + "\n")
    assert "not signed" in AuditLog(path, key=KEY).verify().reason


def test_only_the_key_holder_could_forge_and_then_only_past_the_last_anchor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    keyed = AuditLog(path, key=KEY)
    _fill(keyed, 4)
    anchored = keyed.head()
    assert anchored is not None and anchored.valid(KEY)
    _fill(keyed, 2)
    last = _forge(path, 3, KEY)  # a forger holding the key re-signs the chain and the head
    (tmp_path / "audit.head").write_text(AuditHead(6, last, 1).signed(KEY).to_line() + "\n")
    assert AuditLog(path, key=KEY).verify().ok  # what the key alone buys a forger...
    report = AuditLog(path, key=KEY).verify([anchored])  # ...until a head kept elsewhere
    assert not report.ok and report.first_bad == 4 and report.anchors == 0


def test_a_failed_check_is_never_laundered_by_later_appends(log: AuditLog, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _forge(path, 3)  # self-consistent, but the head names the real entry 6
    again = AuditLog(path)
    assert not again.verify().ok
    _fill(again, 3)  # the service goes on writing: each entry chains onto the forgery
    report = again.verify()
    assert not report.ok and report.first_bad == 6
    head = again.head()
    assert head is not None and head.seq == 6  # the head stayed as the evidence


def test_a_truncated_tail_with_an_old_head_put_back_is_caught_by_an_anchor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    keyed = AuditLog(path, key=KEY)
    _fill(keyed, 4)
    old_head = (tmp_path / "audit.head").read_text()
    _fill(keyed, 3)
    exported = keyed.head()
    assert exported is not None
    _tamper(path, "DELETE FROM audit WHERE seq > 4")
    (tmp_path / "audit.head").write_text(old_head)  # a genuine, older signed head
    assert AuditLog(path, key=KEY).verify().ok  # undetectable from the home alone
    report = AuditLog(path, key=KEY).verify([exported])
    assert not report.ok and "truncated" in report.reason


def test_a_legacy_log_is_keyed_from_the_switch_point_and_stays_verifiable(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(AuditLog(path), 4)  # written before the log had a key
    keyed = AuditLog(path, key=KEY)
    assert keyed.keyed_from == 5
    _fill(keyed, 2)
    report = keyed.verify()
    assert report.ok and report.legacy == 4 and report.keyed and report.entries == 6
    _forge(path, 2)  # the legacy part re-hashed: the first keyed entry's HMAC covers it
    db = sqlite3.connect(path)
    db.execute("UPDATE audit SET prev = (SELECT hash FROM audit WHERE seq = 4) WHERE seq = 5")
    db.commit()
    db.close()
    bad = AuditLog(path, key=KEY).verify()
    assert not bad.ok and bad.first_bad == 5
    with pytest.raises(AuditError, match="keyed with key"):
        AuditLog(path, key=b"another key of 32 bytes, not it")
    with pytest.raises(AuditError, match="keyed"):
        AuditLog(path).append(AuditEvent("search", "ana", "investigator"))


def test_a_keyed_export_verifies_offline_with_the_key_and_its_anchor(tmp_path: Path) -> None:
    keyed = AuditLog(tmp_path / "audit.db", key=KEY)
    _fill(keyed, 5)
    buf = io.StringIO()
    keyed.export(buf, "jsonl")
    lines = buf.getvalue().splitlines()
    head = keyed.head()
    assert head is not None
    report = verify_jsonl(lines, [head], key=KEY)
    assert report.ok and report.keyed and report.legacy == 0 and report.anchors == 1
    assert "keyed" in verify_jsonl(lines).reason  # no key: nothing to check it with
    edited = json.loads(lines[1])
    edited["actor"] = "someone-else"
    lines[1] = json.dumps(edited)
    assert verify_jsonl(lines, [head], key=KEY).first_bad == 2


def test_a_home_from_before_keys_opens_with_its_legacy_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    old = AuditLog(path)
    _fill(old, 3)
    last = old.head()
    assert last is not None
    old.close()
    (tmp_path / "audit.head").write_text(f"{last.seq} {last.hash}\n")  # the old "seq hash" file
    keyed = AuditLog(path, key=KEY)
    head = keyed.head()
    assert head is not None and head.valid(KEY) and (head.seq, head.keyed_from) == (3, 4)
    _fill(keyed, 1)
    report = keyed.verify()
    assert report.ok and report.legacy == 3 and report.entries == 4
