"""The faceindex exception tree.

Every error the library raises on purpose derives from :class:`FaceIndexError`; the CLI maps
each class to an exit code once (``cli/errors.py``) and the HTTP server maps each to a
problem+json status once (``server/errors.py``)::

    FaceIndexError
    ├── ConfigError            settings, URLs, engine home            (exit 2)
    ├── NotFoundError          a source, image, face or receipt id     (exit 3, HTTP 404)
    ├── InputError             a request or argument that cannot work  (exit 2, HTTP 400/422)
    │   └── ImageError         an image that cannot be used
    │       ├── DecodeError    corrupt, truncated, empty, unsupported  (HTTP 422)
    │       ├── ImageTooLarge  over the pixel or byte limit (bomb)     (HTTP 413)
    │       ├── ItemTimeout    an ingest item over its time limit
    │       └── NoFaceError    a probe with no detectable face         (HTTP 422)
    ├── ModelError             model file missing or checksum mismatch (exit 4)
    ├── StorageError           catalog or index failure                (exit 5, HTTP 503)
    ├── MissingDependency      an optional backend's package is absent (exit 2)
    └── PolicyError            governance refused the operation
        ├── PermissionDenied   the actor's role lacks the permission   (exit 6, HTTP 403)
        ├── SourceRefused      unregistered source, deny-listed host   (exit 6, HTTP 403)
        └── AuditError         the audit log could not be written; fail closed (exit 5)
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "ConfigError",
    "DecodeError",
    "FaceIndexError",
    "ImageError",
    "ImageTooLarge",
    "InputError",
    "ItemTimeout",
    "MissingDependency",
    "ModelError",
    "NoFaceError",
    "NotFoundError",
    "PermissionDenied",
    "PolicyError",
    "SourceRefused",
    "StorageError",
]


class FaceIndexError(Exception):
    """Base of every error faceindex raises on purpose."""


class ConfigError(FaceIndexError):
    """Settings, backend URLs or the engine home are wrong or missing."""


class NotFoundError(FaceIndexError):
    """A named object (source, image, face, receipt) does not exist."""


class InputError(FaceIndexError):
    """An argument or request that cannot be carried out as given."""


class ImageError(InputError):
    """An image that cannot be used."""


class DecodeError(ImageError):
    """The bytes are not a decodable image (corrupt, truncated, empty, unsupported)."""


class ImageTooLarge(ImageError):
    """The image exceeds the byte or pixel limit (e.g. a decompression bomb)."""


class ItemTimeout(ImageError):
    """Reading and analysing one ingest item took longer than its time limit."""


class NoFaceError(ImageError):
    """No face was found where one is required (a search probe)."""


class ModelError(FaceIndexError):
    """A model file is missing, unreadable or fails its recorded checksum."""


class StorageError(FaceIndexError):
    """The catalog or the vector index failed."""


class MissingDependency(FaceIndexError):
    """An optional backend was asked for but its package is not installed."""


class PolicyError(FaceIndexError):
    """Governance refused the operation."""


class PermissionDenied(PolicyError):
    """The acting user's role does not grant the permission."""


class SourceRefused(PolicyError):
    """The image does not come from a registered, allowed source."""


class AuditError(PolicyError):
    """The audit log could not be written; the audited operation fails closed."""
