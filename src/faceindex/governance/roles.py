"""Roles and permissions as data: one table drives the CLI, the HTTP API and the docs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from faceindex.errors import PermissionDenied

__all__ = ["ROLE_PERMISSIONS", "Actor", "Permission", "Role", "require"]


class Permission(str, Enum):
    SEARCH = "search"  # search by photo (needs a case reference and a purpose)
    VIEW_ORIGINALS = "view-originals"  # fetch the full original image of a match
    INGEST = "ingest"
    MANAGE_SOURCES = "manage-sources"  # register / delete sources
    DELETE = "delete"  # erase by face, image, source or person
    OPT_OUT = "opt-out"  # register a suppression (opt-out by face)
    SUBJECT_ACCESS = "subject-access"  # list what is held about a person
    READ_AUDIT = "read-audit"  # read, verify and export the audit log
    EXPORT = "export"  # export results or a source's data
    MANAGE_USERS = "manage-users"
    RETENTION = "retention"  # run retention garbage collection
    MANAGE_INDEX = "manage-index"  # rebuild (retrain) and compact the vector index
    MANAGE_PERSONS = "manage-persons"  # build persons, name, merge, split them (seeing: search)


class Role(str, Enum):
    ADMIN = "admin"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    PRIVACY_OFFICER = "privacy-officer"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # The operator of the installation; every action is still audited.
    Role.ADMIN: frozenset(Permission),
    Role.INVESTIGATOR: frozenset({P.SEARCH, P.VIEW_ORIGINALS, P.EXPORT, P.MANAGE_PERSONS}),
    Role.AUDITOR: frozenset({P.READ_AUDIT}),
    Role.PRIVACY_OFFICER: frozenset(
        {P.DELETE, P.OPT_OUT, P.SUBJECT_ACCESS, P.READ_AUDIT, P.RETENTION}
    ),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a named user with one role."""

    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def require(actor: Actor, permission: Permission) -> None:
    if not actor.can(permission):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) lacks the '{permission.value}' permission"
        )
