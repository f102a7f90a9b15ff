"""The exception tree mapped once to CLI exit codes.

0  success (search: at least one probe face has a 'match')
1  search ran but found no match
2  bad input or configuration (ConfigError, InputError, MissingDependency)
3  not found
4  model error
5  storage or audit failure
6  refused by policy (permission, source)
7  ingest incomplete: items failed (each recorded with its reason: faceindex failures) or
   the run stopped on an internal error; what was committed is kept and a rerun resumes
"""

from __future__ import annotations

from faceindex import errors as e

__all__ = ["EXIT_INGEST_INCOMPLETE", "EXIT_NO_MATCH", "exit_code"]

EXIT_NO_MATCH = 1
EXIT_INGEST_INCOMPLETE = 7

_CODES: list[tuple[type[e.FaceIndexError], int]] = [
    (e.AuditError, 5),
    (e.PolicyError, 6),
    (e.NotFoundError, 3),
    (e.ModelError, 4),
    (e.StorageError, 5),
    (e.InputError, 2),
    (e.ConfigError, 2),
    (e.MissingDependency, 2),
]


def exit_code(exc: e.FaceIndexError) -> int:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return 2
