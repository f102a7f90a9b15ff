"""Reading a user's model pack: a directory with ``pack.toml`` (or ``pack.json``) and its files.

An InsightFace-layout pack, for example::

    name = "buffalo-l"
    version = "1"
    dim = 512
    metric = "cosine"
    calibration = "buffalo-l"          # optional: a calibration table's name

    [detector]
    kind = "scrfd"                     # 5 landmarks per face, strides 8/16/32
    file = "det_10g.onnx"
    sha256 = "..."
    input_size = 640                   # letterboxed to 640x640
    score = 0.5                        # optional confidence floor
    outputs = ["448", "471", ...]      # optional: scores x3, boxes x3, landmarks x3 by name

    [aligner]
    kind = "similarity-5"              # 5-point similarity transform onto the template
    template = [[38.2946, 51.6963], ...]  # optional: ArcFace's 112x112 reference points

    [embedder]
    kind = "arcface"
    file = "w600k_r50.onnx"
    sha256 = "..."
    input_size = 112
    mean = 127.5
    std = 127.5
    channels = "rgb"

    [thresholds]                       # Euclidean distances between unit embeddings
    match = 1.13
    possible = 1.18
    erase = 1.05
    suppress = 1.13

Every file's sha256 is checked when the pack loads; a missing key, an unknown key or a
wrong checksum is a :class:`ConfigError` / :class:`ModelError` naming the pack file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomllib

from faceindex.errors import ConfigError
from faceindex.vision.pack import (
    METRICS,
    ModelPack,
    Normalisation,
    PackFile,
    Thresholds,
)
from faceindex.vision.similarity import ARCFACE_112, scaled_template

__all__ = ["PACK_FILES", "load_pack"]

PACK_FILES = ("pack.toml", "pack.json")

_DETECTORS = ("scrfd",)
_ALIGNERS = ("similarity-5",)
_EMBEDDERS = ("arcface",)
_TOP = {"name", "version", "dim", "metric", "calibration", "detector", "aligner", "embedder"}
_TOP |= {"thresholds"}
_DETECTOR_KEYS = {"kind", "file", "sha256", "input_size", "score", "outputs", "mean", "std"}
_ALIGNER_KEYS = {"kind", "template"}
_EMBEDDER_KEYS = {"kind", "file", "sha256", "input_size", "mean", "std", "channels"}
_THRESHOLD_KEYS = {"match", "possible", "erase", "suppress"}


def load_pack(path: Path) -> ModelPack:
    """The pack in directory ``path`` (or at the pack file ``path``), its files verified."""
    path = path.expanduser().resolve()
    spec_file = _spec_file(path)
    raw = _read(spec_file)
    where = str(spec_file)
    _only(raw, _TOP, where)
    det = _table(raw, "detector", _DETECTOR_KEYS, where)
    ali = _table(raw, "aligner", _ALIGNER_KEYS, where)
    emb = _table(raw, "embedder", _EMBEDDER_KEYS, where)
    thr = _table(raw, "thresholds", _THRESHOLD_KEYS, where)
    metric = _get(raw, "metric", str, where)
    if metric not in METRICS:
        raise ConfigError(f"{where}: metric must be one of {', '.join(METRICS)}, not {metric!r}")
    files = (
        PackFile("detector", _get(det, "file", str, where), _sha(det, where)),
        PackFile("embedder", _get(emb, "file", str, where), _sha(emb, where)),
    )
    root = spec_file.parent
    for f in files:
        if Path(f.filename).is_absolute() or ".." in Path(f.filename).parts:
            raise ConfigError(f"{where}: file {f.filename!r} must lie inside the pack directory")
    calibration = raw.get("calibration")
    if calibration is not None and not isinstance(calibration, str):
        raise ConfigError(f"{where}: calibration must be a name (a string)")
    try:
        pack = _build(raw, det, ali, emb, thr, files, root, path, calibration, where)
    except ConfigError as exc:
        if where in str(exc):
            raise
        raise ConfigError(f"{where}: {exc}") from exc
    if pack.detector_outputs and len(pack.detector_outputs) != 9:
        raise ConfigError(f"{where}: detector outputs lists 9 names (3 strides x 3 kinds)")
    for f in pack.files:  # a wrong or missing file fails now, not at the first image
        f.path(root)
    return pack


def _build(
    raw: dict[str, Any],
    det: dict[str, Any],
    ali: dict[str, Any],
    emb: dict[str, Any],
    thr: dict[str, Any],
    files: tuple[PackFile, ...],
    root: Path,
    path: Path,
    calibration: str | None,
    where: str,
) -> ModelPack:
    metric = raw["metric"]  # checked by the caller
    return ModelPack(
        name=_get(raw, "name", str, where),
        version=str(_get(raw, "version", (str, int), where)),
        detector=_kind(det, _DETECTORS, "detector", where),
        aligner=_kind(ali, _ALIGNERS, "aligner", where),
        embedder=_kind(emb, _EMBEDDERS, "embedder", where),
        files=files,
        input_size=_get(emb, "input_size", int, where),
        dim=_get(raw, "dim", int, where),
        metric=metric,  # checked against METRICS above
        thresholds=Thresholds(
            **{k: float(_get(thr, k, (int, float), where)) for k in _THRESHOLD_KEYS}
        ),
        normalisation=Normalisation(
            mean=float(emb.get("mean", 0.0)),
            std=float(emb.get("std", 1.0)),
            channels=_channels(emb, where),
        ),
        template=_template(ali, where, _get(emb, "input_size", int, where)),
        detector_input=_get(det, "input_size", int, where),
        detector_normalisation=Normalisation(  # SCRFD's own: (x - 127.5) / 128 on RGB
            mean=float(det.get("mean", 127.5)), std=float(det.get("std", 128.0))
        ),
        detector_score=float(det.get("score", 0.5)),
        detector_outputs=tuple(str(o) for o in det.get("outputs", ())),
        calibration=calibration,
        root=root,
        source=str(path),
    )


def _spec_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in PACK_FILES:
        if (path / name).is_file():
            return path / name
    raise ConfigError(f"{path} is not a model pack: it holds neither {' nor '.join(PACK_FILES)}")


def _read(spec_file: Path) -> dict[str, Any]:
    try:
        text = spec_file.read_text()
        data = json.loads(text) if spec_file.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{spec_file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{spec_file}: a pack file holds a table of settings")
    return data


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _table(raw: dict[str, Any], key: str, allowed: set[str], where: str) -> dict[str, Any]:
    table = raw.get(key)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: needs a [{key}] table")
    _only(table, allowed, f"{where} [{key}]")
    return table


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing {key!r}")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _sha(table: dict[str, Any], where: str) -> str:
    sha = _get(table, "sha256", str, where).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ConfigError(f"{where}: sha256 {sha!r} is not 64 hex digits")
    return str(sha)


def _kind(table: dict[str, Any], known: tuple[str, ...], role: str, where: str) -> str:
    kind = _get(table, "kind", str, where)
    if kind not in known:
        raise ConfigError(f"{where}: {role} kind {kind!r} is not one of {', '.join(known)}")
    return str(kind)


def _channels(table: dict[str, Any], where: str) -> Any:
    channels = table.get("channels", "rgb")
    if channels not in ("rgb", "bgr"):
        raise ConfigError(f"{where}: channels must be rgb or bgr, not {channels!r}")
    return channels


def _template(table: dict[str, Any], where: str, size: int) -> tuple[tuple[float, float], ...]:
    raw = table.get("template")
    if raw is None:  # ArcFace's points, scaled as its authors scale them for other chip sizes
        return tuple((float(x), float(y)) for x, y in scaled_template(ARCFACE_112, size))
    try:
        points = tuple((float(x), float(y)) for x, y in raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: template is a list of 5 [x, y] points") from exc
    if len(points) != 5:
        raise ConfigError(f"{where}: template has {len(points)} points, not 5")
    return points
