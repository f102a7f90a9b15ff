"""Model packs: a face model is data (its files, their sha256, geometry, metric, thresholds).

Everything model-specific that the rest of faceindex needs — the embedding's dimension, how
two embeddings are compared, the distances that mean "match" and "possible", and the name of
its calibration — is read from the :class:`ModelPack` the home was built with; the literals
live here, in the built-in ``dlib`` pack, and nowhere else.

``metric`` is what the embedder was trained for:

- ``l2``: raw descriptors, compared by Euclidean distance (dlib's ResNet).
- ``cosine``: embeddings are L2-normalised when computed, so the Euclidean distance between
  two of them is ``sqrt(2 - 2 cos)``, a strictly increasing function of the cosine distance.
  The index, the opt-out screen and the erasure sweep all compare Euclidean distances of
  stored vectors, so they rank exactly as cosine similarity does, and a cosine pack's
  thresholds are written in that same unit (``0`` identical, ``sqrt 2`` orthogonal, ``2``
  opposite). :func:`chord_of_cosine` converts a cosine-similarity threshold.

A user's pack is a directory (see :mod:`faceindex.vision.pack_load` for its file format).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from faceindex.errors import ConfigError
from faceindex.index.base import Metric as IndexMetric
from faceindex.vision.models import DLIB_CNN, DLIB_LANDMARKS_5, DLIB_RESNET

__all__ = [
    "BUILTIN_PACKS",
    "DLIB_PACK",
    "METRICS",
    "Metric",
    "ModelIdentity",
    "ModelPack",
    "Normalisation",
    "PackFile",
    "Thresholds",
    "calibration_name",
    "calibration_path",
    "chord_of_cosine",
    "resolve_pack",
    "thresholds_for",
]

Metric = Literal["l2", "cosine"]
METRICS: tuple[Metric, ...] = ("l2", "cosine")


@dataclass(frozen=True)
class PackFile:
    """One weights file: its role in the pack, where it lies, and the sha256 it must have.

    ``package`` names an installed Python package holding the file (dlib's come from
    ``face_recognition_models``); otherwise ``filename`` is relative to the pack directory.
    """

    role: str  # "detector" | "landmarks" | "embedder"
    filename: str
    sha256: str
    package: str = ""

    def path(self, root: Path | None) -> Path:
        """The file, verified against its sha256 (:class:`ModelError` if absent or altered)."""
        from faceindex.vision.models import package_file, verified_path

        if self.package:
            return verified_path(
                package_file(self.package, self.filename), self.sha256, self.filename
            )
        if root is None:
            raise ConfigError(f"pack file {self.filename!r} has no pack directory to live in")
        return verified_path(root / self.filename, self.sha256, self.filename)


@dataclass(frozen=True)
class Normalisation:
    """How a chip's RGB uint8 pixels become the network's input: (x - mean) / std."""

    mean: float = 0.0
    std: float = 1.0
    channels: Literal["rgb", "bgr"] = "rgb"


@dataclass(frozen=True)
class Thresholds:
    """Distances (in the pack's metric) for each decision faceindex makes with this model.

    ``match`` and ``possible`` band search results; ``erase`` is the strict limit of an
    erase-by-person; ``suppress`` keeps an opted-out person's faces out of the gallery.
    """

    match: float
    possible: float
    erase: float
    suppress: float

    def __post_init__(self) -> None:
        for name in ("match", "possible", "erase", "suppress"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"threshold {name} must be a positive number, not {value!r}")
        if self.possible < self.match:
            raise ConfigError(
                f"the 'possible' threshold ({self.possible}) is below 'match' ({self.match})"
            )


@dataclass(frozen=True)
class ModelIdentity:
    """What a home records about the model its gallery was embedded with."""

    name: str
    version: str
    dim: int
    metric: Metric

    def describe(self) -> str:
        return f"{self.name}@{self.version} ({self.dim}-d, {self.metric})"


@dataclass(frozen=True)
class ModelPack:
    """A detector, an aligner and an embedder that belong together, with their numbers.

    ``detector``, ``aligner`` and ``embedder`` name the implementation kinds the vision
    factory knows (``dlib`` / ``dlib-5`` / ``dlib-resnet``; ``scrfd`` / ``similarity-5`` /
    ``arcface``). ``template`` is the aligner's landmark template in chip pixels (empty where
    the aligner brings its own, as dlib's does); ``input_size`` the chip's side.
    """

    name: str
    version: str
    detector: str
    aligner: str
    embedder: str
    files: tuple[PackFile, ...]
    input_size: int
    dim: int
    metric: Metric
    thresholds: Thresholds
    normalisation: Normalisation = field(default_factory=Normalisation)
    template: tuple[tuple[float, float], ...] = ()
    detector_normalisation: Normalisation = field(default_factory=Normalisation)
    detector_input: int = 0  # square side the detector runs at (0: the image's own size)
    detector_score: float = 0.5  # the detector's confidence floor
    detector_outputs: tuple[
        str, ...
    ] = ()  # output names in the layout's order (empty: by position)
    calibration: str | None = None  # a calibration table's name; see :func:`calibration_name`
    root: Path | None = None  # the pack directory (None: built in)
    source: str = ""  # how the user named it: a built-in name or the directory

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(
                f"pack {self.name!r}: metric must be l2 or cosine, not {self.metric!r}"
            )
        if self.dim <= 0 or self.input_size <= 0:
            raise ConfigError(f"pack {self.name!r}: dim and input_size must be positive")

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.name, self.version, self.dim, self.metric)

    @property
    def index_metric(self) -> IndexMetric:
        """The vector index's metric: Euclidean for both (a cosine pack's vectors are unit)."""
        return "l2"

    @property
    def normalise(self) -> bool:
        """Whether the embedder L2-normalises its output (so distances follow cosine)."""
        return self.metric == "cosine"

    def file(self, role: str) -> Path:
        """The verified path of the pack's file for ``role``."""
        for f in self.files:
            if f.role == role:
                return f.path(self.root)
        raise ConfigError(f"pack {self.name!r} has no {role} file")

    def descriptor_name(self, *, mirror: bool) -> str:
        """The model tag stored with every face: which weights, and how they were applied."""
        return f"{self.name}{'+mirror' if mirror else ''}@{self.version}"


def chord_of_cosine(similarity: float) -> float:
    """The Euclidean distance between unit vectors whose cosine similarity is ``similarity``."""
    if not -1.0 <= similarity <= 1.0:
        raise ConfigError(f"a cosine similarity lies in [-1, 1], not {similarity}")
    return math.sqrt(max(0.0, 2.0 - 2.0 * similarity))


# dlib's ResNet was trained so the same person lies within 0.6 (L2) of themselves, with a
# 0.05 'possible' band above it; erasure is stricter than matching (0.5) and an opt-out
# screens at the match distance. See docs/CONFIG.md.
DLIB_PACK = ModelPack(
    name="dlib",
    version=f"resnet-v{DLIB_RESNET.version}",
    detector="dlib",
    aligner="dlib-5",
    embedder="dlib-resnet",
    files=tuple(
        PackFile(spec.role, spec.filename, spec.sha256, spec.package)
        for spec in (DLIB_RESNET, DLIB_LANDMARKS_5, DLIB_CNN)
    ),
    input_size=DLIB_RESNET.input_size,
    dim=128,
    metric="l2",
    thresholds=Thresholds(match=0.6, possible=0.65, erase=0.5, suppress=0.6),
    calibration="{tag}",  # one table per way of applying the ResNet (mirror, jitters)
    source="dlib",
)

BUILTIN_PACKS: dict[str, ModelPack] = {DLIB_PACK.name: DLIB_PACK}


def resolve_pack(model: str) -> ModelPack:
    """A built-in pack by name, or the pack directory at the path ``model``."""
    if model in BUILTIN_PACKS:
        return BUILTIN_PACKS[model]
    path = Path(model).expanduser()
    if not path.exists():
        known = ", ".join(sorted(BUILTIN_PACKS))
        raise ConfigError(
            f"unknown model {model!r}: neither a built-in pack ({known}) nor a pack directory"
        )
    from faceindex.vision.pack_load import load_pack

    return load_pack(path)


def thresholds_for(
    pack: ModelPack,
    *,
    match: float | None = None,
    possible: float | None = None,
    erase: float | None = None,
    suppress: float | None = None,
) -> Thresholds:
    """The pack's thresholds with the settings' overrides (``None``: the pack's own).

    A raised ``match`` with no ``possible`` of its own keeps the band from collapsing below it.
    """
    t = pack.thresholds
    m = t.match if match is None else match
    return Thresholds(
        match=m,
        possible=max(t.possible, m) if possible is None else possible,
        erase=t.erase if erase is None else erase,
        suppress=t.suppress if suppress is None else suppress,
    )


def calibration_name(pack: ModelPack, tag: str) -> str | None:
    """The name of the calibration table this pack's distances are read with (None: none).

    ``tag`` is the model tag stored with every face (:func:`faceindex.vision.factory.model_tag`:
    the weights and how they were applied, e.g. mirror-averaged), since a calibration holds
    for one way of computing descriptors; the pack's ``calibration`` may contain ``{tag}``.
    """
    return pack.calibration.replace("{tag}", tag) if pack.calibration else None


def calibration_path(pack: ModelPack, tag: str) -> Path | None:
    """A calibration table shipped in the pack's own directory, ``<name>.calibration.json``,
    where there is one (a built-in pack's ship with faceindex instead)."""
    name = calibration_name(pack, tag)
    if name is None or pack.root is None:
        return None
    path = pack.root / f"{name}.calibration.json"
    return path if path.is_file() else None
