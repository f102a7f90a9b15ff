"""The audit log's own operations, audited: verify (against the head and exported anchors),
anchor (export the signed head elsewhere), export (JSONL or CSV). The Governance
collaborator for them; the log itself is ``audit.py``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from faceindex.errors import AuditError, InputError
from faceindex.governance.acting import Acting
from faceindex.governance.audit import AuditEntry, AuditHead, AuditLog, VerifyReport
from faceindex.governance.roles import Permission

__all__ = ["AuditFilter", "AuditPage", "Auditing"]

log = logging.getLogger(__name__)
P = Permission


@dataclass(frozen=True)
class AuditFilter:
    """Which entries an auditor wants: exact actor and action, case containing ``case``
    (case-insensitive), ``at`` within [since, until] compared as ISO-8601 text (a date
    ``2026-12-01`` as ``until`` covers that whole day)."""

    actor: str = ""
    action: str = ""
    case: str = ""
    since: str = ""
    until: str = ""

    def keeps(self, entry: AuditEntry) -> bool:
        e = entry.event
        return (
            (not self.actor or e.actor == self.actor)
            and (not self.action or e.action == self.action)
            and (not self.case or self.case.lower() in e.case.lower())
            and (not self.since or entry.at >= self.since)
            and (not self.until or entry.at[: len(self.until)] <= self.until)
        )


@dataclass(frozen=True)
class AuditPage:
    entries: tuple[AuditEntry, ...]  # newest first
    next_before: int | None  # pass as ``before`` for the next (older) page; None: no more


class Auditing:
    def __init__(self, audit: AuditLog, acting: Acting) -> None:
        self.audit = audit
        self.acting = acting

    def verify(self, anchors: Sequence[AuditHead] = ()) -> VerifyReport:
        """Re-check the chain against its own head and any exported ``anchors``. A failed
        verify appends nothing: an entry chained onto a broken log would move the head
        over the damage."""
        self.acting.require(P.READ_AUDIT, action="audit-verify")
        report = self.audit.verify(anchors)
        if not report.ok:
            log.error("audit log verify failed at %s: %s", report.first_bad, report.reason)
            return report
        self.acting.record(
            "audit-verify", details={"entries": report.entries, "anchors": len(anchors)}
        )
        return report

    def anchor(self, out: Path | str) -> AuditHead:
        """Append the log's signed head to ``out`` (a file elsewhere: another machine, a
        write-once store), after checking the chain: a broken chain is never anchored."""
        head = self.anchor_head(str(out))
        try:
            with open(out, "a") as fh:
                fh.write(head.to_line() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"cannot write the anchor {out}: {exc.strerror or exc}") from exc
        return head

    def anchor_head(self, out: str) -> AuditHead:
        """The signed head to keep elsewhere (``out`` says where, for the audit entry),
        after checking the chain: a broken chain is never anchored."""
        self.acting.require(P.READ_AUDIT, action="audit-anchor")
        report = self.audit.verify()
        if not report.ok:
            raise AuditError(
                f"the audit log does not verify (entry {report.first_bad}: {report.reason}); "
                "not anchoring it"
            )
        self.acting.record("audit-anchor", details={"out": out, "entries": report.entries})
        head = self.audit.head()
        if head is None:
            raise AuditError("the audit log has no head to anchor")
        return head

    def export(self, out: TextIO, fmt: str = "jsonl") -> int:
        self.acting.require(P.READ_AUDIT, action="audit-export")
        self.acting.record("audit-export", details={"format": fmt})
        return self.audit.export(out, fmt)

    def page(self, wanted: AuditFilter, *, limit: int, before: int | None = None) -> AuditPage:
        """One page of the entries ``wanted`` keeps, newest first, older than ``before``.
        Not itself audited (the caller verifies the chain, which is)."""
        self.acting.require(P.READ_AUDIT, action="audit-verify")
        found: list[AuditEntry] = []
        cursor = before
        while len(found) < limit:
            batch = self.audit.newest(cursor, 1000)
            if not batch:
                return AuditPage(tuple(found), None)
            for entry in batch:
                cursor = entry.seq
                if wanted.keeps(entry):
                    found.append(entry)
                    if len(found) == limit:
                        break
        more = bool(cursor and cursor > 1 and self.audit.newest(cursor, 1))
        return AuditPage(tuple(found), cursor if more else None)
