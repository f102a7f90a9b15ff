"""Embed image files with the engine's models on every core: the descriptors ingest stores."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceindex.config import Settings
from faceindex.errors import FaceIndexError
from faceindex.pipeline import worker
from faceindex.pipeline.runner import pool_context
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.decode import decode_image

__all__ = ["FaceSample", "embed_faces", "embed_files", "largest"]


@dataclass(frozen=True)
class FaceSample:
    """One face of one file: its descriptor, quality score and box area (for 'largest')."""

    quality: float
    area: int
    vector: np.ndarray = field(repr=False, compare=False)


Embedded = tuple[str, list[FaceSample], str]


def _embed_one(analyzer: FaceAnalyzer, settings: Settings, path: str) -> Embedded:
    try:
        rgb = decode_image(
            Path(path).read_bytes(), max_pixels=settings.max_pixels, max_bytes=settings.max_bytes
        )
    except (OSError, FaceIndexError) as exc:
        return path, [], f"unreadable: {exc}"
    faces = analyzer.analyze(rgb)
    if not faces:
        return path, [], "no face found"
    return path, [FaceSample(f.quality.score, f.bbox.area, f.embedding) for f in faces], ""


def _embed_chunk(paths: list[str]) -> list[Embedded]:
    state = worker.current()
    return [_embed_one(state.analyzer, state.settings, p) for p in paths]


def largest(faces: Sequence[FaceSample]) -> FaceSample | None:
    return max(faces, key=lambda f: f.area) if faces else None


def embed_faces(
    paths: Sequence[Path],
    settings: Settings,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Path, list[FaceSample]]:
    """Every face of each file (an empty list where none is found or the file is bad)."""
    unique = sorted({str(p) for p in paths})
    out: dict[Path, list[FaceSample]] = {}
    workers = settings.effective_workers()
    chunks = [unique[i : i + 4] for i in range(0, len(unique), 4)]
    if workers == 1:
        from faceindex.vision.factory import build_analyzer

        analyzer = build_analyzer(settings)
        results = ([_embed_one(analyzer, settings, p) for p in chunk] for chunk in chunks)
        _collect(results, out, len(unique), progress)
        return out
    with ProcessPoolExecutor(
        workers, mp_context=pool_context(), initializer=worker.init_worker, initargs=(settings, 1)
    ) as pool:
        _collect(pool.map(_embed_chunk, chunks), out, len(unique), progress)
    return out


def embed_files(
    paths: Sequence[Path],
    settings: Settings,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Path, np.ndarray | None]:
    """Descriptor of the largest face in each file (None where no face is found)."""
    faces = embed_faces(paths, settings, progress=progress)
    return {p: (f.vector if (f := largest(fs)) else None) for p, fs in faces.items()}


def _collect(
    results: Iterable[list[Embedded]],
    out: dict[Path, list[FaceSample]],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    for chunk in results:
        for path, faces, _reason in chunk:
            out[Path(path)] = faces
        if progress is not None:
            progress(len(out), total)
