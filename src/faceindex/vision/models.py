"""Model files as data with provenance: where they come from and the sha256 they must have.

The weights ship in the ``face_recognition_models`` PyPI package; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from faceindex.errors import ModelError

__all__ = [
    "DLIB_CNN",
    "DLIB_LANDMARKS_5",
    "DLIB_RESNET",
    "ModelSpec",
    "model_path",
    "package_file",
    "verified_path",
]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    package: str
    filename: str
    sha256: str
    role: str  # "detector" | "landmarks" | "embedder"
    input_size: int  # square input side in pixels (0 = any)
    normalisation: str


DLIB_RESNET = ModelSpec(
    name="dlib-resnet-v1",
    version="1",
    package="face_recognition_models",
    filename="models/dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    role="embedder",
    input_size=150,
    normalisation="raw 128-d descriptor, compared by L2 distance (not unit length)",
)
DLIB_LANDMARKS_5 = ModelSpec(
    name="dlib-shape-predictor-5",
    version="1",
    package="face_recognition_models",
    filename="models/shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    role="landmarks",
    input_size=0,
    normalisation="RGB uint8",
)
DLIB_CNN = ModelSpec(
    name="dlib-mmod-human-face",
    version="1",
    package="face_recognition_models",
    filename="models/mmod_human_face_detector.dat",
    sha256="4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    role="detector",
    input_size=0,
    normalisation="RGB uint8",
)


def model_path(spec: ModelSpec) -> Path:
    """The verified path of a model file; raises :class:`ModelError` if absent or altered."""
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model package {spec.package!r} is not installed: pip install {spec.package}"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    stat = path.stat()
    digest = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if digest != spec.sha256:
        raise ModelError(
            f"checksum mismatch for {spec.name} at {path}: expected {spec.sha256}, got {digest}"
        )
    return path


def package_file(package: str, filename: str) -> Path:
    """Where an installed package keeps ``filename`` (unverified; see :func:`verified_path`)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"model package {package!r} is not installed: pip install {package}")
    return Path(list(found.submodule_search_locations)[0]) / filename


def verified_path(path: Path, sha256: str, name: str) -> Path:
    """``path`` if it holds a file with this sha256; else :class:`ModelError` saying why."""
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    stat = path.stat()
    digest = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if digest != sha256.lower():
        raise ModelError(f"checksum mismatch for {name} at {path}: expected {sha256}, got {digest}")
    return path


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
