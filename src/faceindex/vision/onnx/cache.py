"""Converted graphs, cached on disk: converted once per machine, verified every time they load.

A graph is keyed by its source ``.dat``'s sha256 (checked by ``model_path``) and the
converter version. Beside each ``.onnx`` a ``.json`` records the source sha256 and the graph's
own sha256; the graph also carries the source sha256 in its metadata. Anything that does not
verify is converted again (it is a cache, never a source of truth). Writes go to a temporary
file in the same folder and are renamed into place, so concurrent workers converting at the
same time each leave a whole file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from faceindex.errors import ModelError
from faceindex.vision.models import ModelSpec, model_path
from faceindex.vision.onnx.convert import CONVERTER_VERSION, to_onnx
from faceindex.vision.onnx.dlib_format import Network, Spec, read_network

__all__ = ["SOURCE_KEY", "check_source", "default_cache_dir", "load_converted"]

log = logging.getLogger(__name__)

SOURCE_KEY = "faceindex.source_sha256"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "faceindex" / "onnx"


def _paths(spec: ModelSpec, cache_dir: Path) -> tuple[Path, Path]:
    stem = f"{spec.name}-{spec.sha256[:16]}-c{CONVERTER_VERSION}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"


def _verified(spec: ModelSpec, graph: Path, record: Path) -> bytes | None:
    """The cached graph's bytes if it is the conversion of ``spec``'s file, else None."""
    try:
        meta = json.loads(record.read_text())
        data = graph.read_bytes()
    except (OSError, ValueError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    if (
        meta.get("source_sha256") != spec.sha256
        or meta.get("converter_version") != CONVERTER_VERSION
        or meta.get("onnx_sha256") != digest
    ):
        log.warning("cached ONNX graph %s does not verify; converting %s again", graph, spec.name)
        return None
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_converted(
    spec: ModelSpec,
    network_spec: Spec,
    cache_dir: Path | None = None,
    *,
    on_network: Callable[[Network], None] | None = None,
) -> bytes:
    """The ONNX graph of ``spec``'s dlib file: from the cache if it verifies, else converted.

    ``on_network`` sees the parsed network when a conversion happens (tests use it).
    Raises :class:`ModelError` if the source file is missing or altered.
    """
    cache_dir = cache_dir or default_cache_dir()
    graph, record = _paths(spec, cache_dir)
    cached = _verified(spec, graph, record)
    if cached is not None:
        return cached
    source = model_path(spec)  # verifies the .dat's sha256 against the spec
    network = read_network(source.read_bytes(), network_spec)
    if on_network is not None:
        on_network(network)
    data = to_onnx(
        network,
        doc=f"converted by faceindex from {spec.filename} ({spec.name})",
        metadata={SOURCE_KEY: spec.sha256, "faceindex.model": spec.name},
    )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(graph, data)
        meta = {
            "model": spec.name,
            "source": spec.filename,
            "source_sha256": spec.sha256,
            "converter_version": CONVERTER_VERSION,
            "onnx_sha256": hashlib.sha256(data).hexdigest(),
        }
        _write_atomic(record, json.dumps(meta, indent=1).encode())
        log.info("converted %s to ONNX: %s", spec.name, graph)
    except OSError as exc:  # an unwritable cache costs a conversion per load, nothing more
        log.warning("cannot cache the ONNX graph of %s in %s: %s", spec.name, cache_dir, exc)
    return data


def check_source(recorded: str | None, spec: ModelSpec) -> None:
    """A loaded graph must say it came from ``spec``'s file."""
    if recorded != spec.sha256:
        raise ModelError(
            f"ONNX graph for {spec.name} records source sha256 {recorded!r}, expected {spec.sha256}"
        )
