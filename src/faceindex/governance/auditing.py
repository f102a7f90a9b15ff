"""The audit log's own operations, audited: verify (against the head and exported anchors),
anchor (export the signed head elsewhere), export (JSONL or CSV). The Governance
collaborator for them; the log itself is ``audit.py``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from faceindex.errors import AuditError, InputError
from faceindex.governance.acting import Acting
from faceindex.governance.audit import AuditHead, AuditLog, VerifyReport
from faceindex.governance.roles import Permission

__all__ = ["Auditing"]

log = logging.getLogger(__name__)
P = Permission


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
        self.acting.require(P.READ_AUDIT, action="audit-anchor")
        report = self.audit.verify()
        if not report.ok:
            raise AuditError(
                f"the audit log does not verify (entry {report.first_bad}: {report.reason}); "
                "not anchoring it"
            )
        self.acting.record("audit-anchor", details={"out": str(out), "entries": report.entries})
        head = self.audit.head()
        if head is None:
            raise AuditError("the audit log has no head to anchor")
        try:
            with open(out, "a") as fh:
                fh.write(head.to_line() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"cannot write the anchor {out}: {exc.strerror or exc}") from exc
        return head

    def export(self, out: TextIO, fmt: str = "jsonl") -> int:
        self.acting.require(P.READ_AUDIT, action="audit-export")
        self.acting.record("audit-export", details={"format": fmt})
        return self.audit.export(out, fmt)
