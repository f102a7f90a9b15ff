"""The composition root: the one place that names concrete vision models and sources, and
wires settings, catalog, index and pipeline into an :class:`Engine`."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np

from faceindex.backends import open_catalog, open_index
from faceindex.catalog.base import Catalog, NewSource
from faceindex.config import Settings
from faceindex.errors import ConfigError, InputError, NoFaceError
from faceindex.index.base import VectorIndex
from faceindex.index.maintenance import Maintainable
from faceindex.pipeline.runner import FaceScreen, Progress_cb, run_ingest
from faceindex.pipeline.worker import WorkerState
from faceindex.search.scoring import Decider
from faceindex.search.searcher import match_faces
from faceindex.sources.base import ImageSource, LegalBasis, SourceRecord
from faceindex.types import IngestSummary, SearchResult
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.calibration import Calibration, default_calibration, load_calibration
from faceindex.vision.decode import decode_image
from faceindex.vision.embed import descriptor_name

__all__ = ["Engine", "build_analyzer", "build_calibration", "build_source"]

log = logging.getLogger(__name__)


def build_analyzer(settings: Settings) -> FaceAnalyzer:
    """The face models the settings ask for (loads dlib and the weights: ~0.5 s)."""
    from faceindex.vision.align import DlibAligner
    from faceindex.vision.base import Detector
    from faceindex.vision.detect import (
        CnnDetector,
        FallbackDetector,
        HogDetector,
        WholeImageDetector,
    )
    from faceindex.vision.embed import DlibEmbedder

    common = {"max_side": settings.detect_max_side, "min_size": settings.min_face_size}
    up = settings.detect_upsample
    detector: Detector
    if settings.detector == "whole":
        detector = WholeImageDetector(HogDetector(upsample=2, max_side=0))
    elif settings.detector == "cnn":
        detector = CnnDetector(upsample=up, **common)
    elif settings.detect_fallback:
        detector = FallbackDetector(
            [
                HogDetector(upsample=up, **common),
                HogDetector(upsample=up + 1, **common),
                CnnDetector(upsample=up, **common),
            ]
        )
    else:
        detector = HogDetector(upsample=up, **common)
    return FaceAnalyzer(
        detector,
        DlibAligner(),
        DlibEmbedder(mirror=settings.mirror, jitters=settings.jitters),
        thumbnail_size=settings.thumbnail_size,
    )


def build_calibration(settings: Settings) -> Calibration:
    """The home's own calibration (``calibration_path``), else the one the model ships."""
    model = descriptor_name(mirror=settings.mirror, jitters=settings.jitters)
    if settings.calibration_path is not None:
        cal = load_calibration(settings.calibration_path)
        if cal.model != model:
            log.warning(
                "calibration %s is for %s, the home embeds with %s",
                settings.calibration_path,
                cal.model,
                model,
            )
        return cal
    return default_calibration(model)


def build_source(record: SourceRecord, settings: Settings) -> ImageSource:
    if record.kind == "folder":
        from faceindex.sources.folder import FolderSource

        return FolderSource(record.uri, max_bytes=settings.max_bytes)
    if record.kind in ("archive", "urls"):
        from faceindex.sources.factory import build_governed_source

        return build_governed_source(record, settings)
    raise ConfigError(f"source {record.name!r} has unknown kind {record.kind!r}")


class Engine:
    """One engine home: its catalog, its vector index, and the models to fill and search them.

    Open it with :meth:`open`; use it as a context manager so the index is saved on exit.
    """

    def __init__(self, settings: Settings, catalog: Catalog, index: VectorIndex) -> None:
        self.settings = settings
        self.catalog = catalog
        self.index = index
        self._analyzer: FaceAnalyzer | None = None
        self._calibration: Calibration | None = None

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Engine:
        home = settings.home
        if create:
            home.mkdir(parents=True, exist_ok=True)
        elif not home.is_dir():
            raise ConfigError(f"no engine home at {home}: run 'faceindex init' first")
        catalog = open_catalog(settings.resolved_catalog_url)
        try:
            index = open_index(settings.resolved_index_url, dim=128, metric="l2")
        except Exception:
            catalog.close()
            raise
        engine = cls(settings, catalog, index)
        engine.reconcile()
        return engine

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()
        self.catalog.close()

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = build_analyzer(self.settings)
        return self._analyzer

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = build_calibration(self.settings)
        return self._calibration

    def decider(self, match_bound: float | None = None) -> Decider:
        s = self.settings
        return Decider(
            self.calibration,
            match_bound=s.match_bound if match_bound is None else match_bound,
            possible_strangers=s.possible_strangers,
            possible_fmr=s.possible_fmr,
            match_quality=s.match_quality,
        )

    # -- consistency ----------------------------------------------------------------------

    def reconcile(self, *, full: bool = False) -> tuple[int, int]:
        """Make the index hold exactly the catalog's faces (after a crash, or a lost index).

        Unless ``full``, equal counts are taken as agreement: comparing every id costs
        minutes at 100M faces, and search drops ids the catalog no longer holds anyway.
        Returns (vectors added, vectors removed)."""
        if not full and self.index.count() == self.catalog.count_faces():
            return 0, 0
        held = self.index.ids()
        live = self.catalog.live_face_ids()
        extra = np.setdiff1d(held, live, assume_unique=False)
        removed = self.index.remove(extra) if len(extra) else 0
        missing = set(np.setdiff1d(live, held).tolist())
        added = 0
        if missing:
            for ids, vecs in self.catalog.iter_embeddings():
                mask = np.fromiter((i in missing for i in ids.tolist()), dtype=bool, count=len(ids))
                if mask.any():
                    self.index.add(ids[mask], vecs[mask])
                    added += int(mask.sum())
        if added or removed:
            log.warning("index reconciled with catalog: %d added, %d removed", added, removed)
            self.index.save()
        return added, removed

    def rebuild_index(self, kind: str | None = None) -> int:
        """Drop every vector and re-add all of them from the catalog (retraining compressed
        codes where the index has them); ``kind`` (flat, ivf, auto) applies to FAISS."""
        if isinstance(self.index, Maintainable):
            return self.index.rebuild(self.catalog.iter_embeddings(), kind=kind)
        if kind is not None:
            raise InputError(f"--kind applies to faiss indexes, not {self.index!r}")
        self.index.remove(self.index.ids())
        n = 0
        for ids, vecs in self.catalog.iter_embeddings():
            self.index.add(ids, vecs)
            n += len(ids)
        self.index.save()
        return n

    def compact_index(self) -> int:
        """Physically drop removed vectors; returns how many. The in-memory oracle removes
        at once and keeps nothing on disk: nothing to drop."""
        return self.index.compact() if isinstance(self.index, Maintainable) else 0

    # -- sources and ingest ---------------------------------------------------------------

    def add_source(
        self,
        name: str,
        *,
        path: str,
        owner: str,
        legal_basis: str,
        retention_days: int,
        legal_reference: str = "",
        purposes: tuple[str, ...] = (),
        jurisdiction: str = "",
    ) -> SourceRecord:
        try:
            basis = LegalBasis(legal_basis).value
        except ValueError as exc:
            choices = ", ".join(b.value for b in LegalBasis)
            raise InputError(f"unknown legal basis {legal_basis!r}; one of: {choices}") from exc
        if retention_days <= 0:
            raise InputError("retention_days must be a positive number of days")
        if not owner.strip():
            raise InputError("a source needs an owner")
        root = Path(path).expanduser().resolve()
        from faceindex.sources.factory import source_kind

        kind = source_kind(root, self.settings)  # folder, archive or URL list; checked
        return self.catalog.add_source(
            NewSource(
                name=name,
                kind=kind,
                uri=str(root),
                owner=owner,
                legal_basis=basis,
                retention_days=retention_days,
                legal_reference=legal_reference,
                purposes=purposes,
                jurisdiction=jurisdiction,
            )
        )

    def ingest(
        self,
        source_name: str,
        *,
        progress: Progress_cb | None = None,
        screen: FaceScreen | None = None,
        in_process: bool = False,
    ) -> IngestSummary:
        record = self.catalog.get_source(source_name)
        source = build_source(record, self.settings)
        state = WorkerState(self.settings, self.analyzer) if in_process else None
        return run_ingest(
            settings=self.settings,
            catalog=self.catalog,
            index=self.index,
            source=source,
            source_id=record.id,
            model=descriptor_name(mirror=self.settings.mirror, jitters=self.settings.jitters),
            progress=progress,
            screen=screen,
            state=state,
        )

    # -- search ---------------------------------------------------------------------------

    def search(
        self,
        image: bytes,
        *,
        top_k: int | None = None,
        largest: bool = False,
        sources: Collection[str] | None = None,
        match_bound: float | None = None,
    ) -> list[SearchResult]:
        s = self.settings
        rgb = decode_image(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
        faces = self.analyzer.analyze(rgb)
        if not faces:
            raise NoFaceError("no face found in the probe image")
        if largest:
            faces = [max(faces, key=lambda f: f.bbox.area)]
        return match_faces(
            self.catalog,
            self.index,
            faces,
            top_k=top_k or s.top_k,
            decider=self.decider(match_bound),
            sources=sources,
            match_quality=s.match_quality,
        )

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.catalog.stats())
        out["index_vectors"] = self.index.count()
        out["index"] = self.settings.resolved_index_url
        out["catalog"] = self.settings.resolved_catalog_url
        return out
