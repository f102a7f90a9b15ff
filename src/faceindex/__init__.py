"""faceindex: lawful face search over the image collections an organisation may hold.

Importing this package does no work: no models load, no files are written. The engine is
built with :meth:`Engine.open` from :class:`Settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faceindex.config import Settings
from faceindex.errors import FaceIndexError

if TYPE_CHECKING:
    from faceindex.engine import Engine

__all__ = ["Engine", "FaceIndexError", "Settings", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Engine pulls in numpy and the storage layer; keep `import faceindex` light.
    if name == "Engine":
        from faceindex.engine import Engine

        return Engine
    raise AttributeError(name)
