"""Persons as plain data: a person is a set of a gallery's faces that a clustering (or a user)
said belong to one individual, with a representative face and an optional label.

The catalog holds them (``catalog/sql_persons.py``, schema v3); ``cluster.py`` is the pure
graph clustering; ``build.py`` builds its graph from the vector index and places faces;
``governance/persons.py`` is the audited facade the CLI and HTTP API call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METHODS", "ClusterPolicy", "Method", "Membership", "Person", "Placement"]

Method = Literal["chinese-whispers", "components"]
METHODS: tuple[Method, ...] = ("chinese-whispers", "components")


@dataclass(frozen=True)
class Person:
    """A person row with the ids of its faces (ascending)."""

    id: int
    label: str  # a name or case label given by an authorised user; "" until then
    labelled_by: str
    representative: int | None  # the face shown for the person (its best-quality by default)
    face_ids: tuple[int, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Membership:
    """Which person a face belongs to; ``pinned`` when a user put it there (merge, split,
    remove-face), so a rebuild keeps it."""

    person_id: int
    pinned: bool


@dataclass(frozen=True)
class Placement:
    """Faces to put into one person: ``person_id`` an existing one, or None for a new one."""

    person_id: int | None
    face_ids: tuple[int, ...]


@dataclass(frozen=True)
class ClusterPolicy:
    """How faces are clustered, in the model's distances (``build.policy_for`` derives them
    from the model pack's thresholds).

    ``edge``: two faces are linked in the graph when at most this far apart. ``gate``
    (components only): two groups join over a link only if their mean descriptors are at
    most this far apart, which stops a chain of close pairs from joining two people.
    ``neighbours``: links per face, from the vector index's k nearest (no all-pairs).
    """

    method: Method
    edge: float
    gate: float
    neighbours: int
