"""The composition root: the one place that names concrete sources, and wires settings, the
model pack (built by ``vision/factory.py``), catalog, index and pipeline into an
:class:`Engine`."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from faceindex.backends import open_catalog, open_index
from faceindex.catalog.base import Catalog, NewSource
from faceindex.config import Settings
from faceindex.errors import ConfigError, InputError, ModelError, NoFaceError
from faceindex.home_switch import complete_switch
from faceindex.index.base import VectorIndex
from faceindex.index.maintenance import Maintainable
from faceindex.index.synced import SyncedIndex, compare_all
from faceindex.model_record import check_model
from faceindex.pipeline.runner import (
    CommitGuard,
    FaceScreen,
    ImageScreen,
    Progress_cb,
    run_ingest,
)
from faceindex.pipeline.worker import WorkerState
from faceindex.search.scoring import Decider
from faceindex.search.searcher import match_faces
from faceindex.search.template import Fusion, match_template
from faceindex.search.verify import Verification, verify_photos
from faceindex.sources.base import ImageSource, LegalBasis, SourceRecord
from faceindex.types import IngestSummary, SearchResult
from faceindex.vision.analyze import Analyzer, FaceAnalyzer
from faceindex.vision.calibration import Calibration, default_calibration, load_calibration
from faceindex.vision.factory import build_analyzer, model_tag, settings_pack
from faceindex.vision.pack import (
    ModelPack,
    Thresholds,
    calibration_name,
    calibration_path,
    thresholds_for,
)

__all__ = ["Engine", "build_analyzer", "build_calibration", "build_source"]

log = logging.getLogger(__name__)


def build_calibration(settings: Settings, pack: ModelPack) -> Calibration:
    """The home's own calibration (``calibration_path``), else the one its model pack
    ships (inside the pack directory, or with faceindex for a built-in pack)."""
    model = model_tag(settings, pack)
    path = settings.calibration_path or calibration_path(pack, model)
    if path is not None:
        cal = load_calibration(path)
        if cal.model != model:
            log.warning("calibration %s is for %s, the home embeds with %s", path, cal.model, model)
        return cal
    name = calibration_name(pack, model)
    if name is None:
        raise ModelError(
            f"model pack {pack.name!r} ships no calibration: measure one with "
            "`faceindex eval folder ROOT --calibrate FILE` and set calibration_path"
        )
    return default_calibration(name)


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

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        index: VectorIndex,
        pack: ModelPack | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.index = index
        self.pack = pack or settings_pack(settings)  # the face models, dim, metric, thresholds
        self._analyzer: FaceAnalyzer | None = None
        # Where probe photos are analysed; None: this process's models. The server puts
        # worker processes here (server/workers.py) so an analysis never holds its GIL.
        self.probe_analyzer: Analyzer | None = None
        self._calibration: Calibration | None = None

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Engine:
        home = settings.home
        if create:
            home.mkdir(parents=True, exist_ok=True)
        elif not home.is_dir():
            raise ConfigError(f"no engine home at {home}: run 'faceindex init' first")
        complete_switch(home)  # a reembed's switch a crash interrupted
        pack = settings_pack(settings)
        catalog = open_catalog(settings.resolved_catalog_url)
        try:
            check_model(home, pack, has_gallery=catalog.count_faces() > 0)
            url = settings.resolved_index_url
            backend = open_index(url, dim=pack.dim, metric=pack.index_metric)
        except Exception:
            catalog.close()
            raise
        engine = cls(settings, catalog, _follow(backend, catalog, home), pack)
        try:
            engine.reconcile()
        except Exception:
            try:
                engine.close()
            except Exception:  # the reconcile failure is the one to report
                log.exception("closing %s after a failed reconcile", home)
            raise
        return engine

    def switch_model(self, pack: ModelPack, catalog: Catalog, index: VectorIndex) -> None:
        """Adopt a re-embedded home's catalog, index and models (see ``faceindex.reembed``);
        the old catalog and index are already closed."""
        self.pack, self.catalog = pack, catalog
        self.index = _follow(index, catalog, self.settings.home)
        self._analyzer = None

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
            self._analyzer = build_analyzer(self.settings, self.pack)
        return self._analyzer

    @property
    def thresholds(self) -> Thresholds:
        """The model pack's distances for each decision, with the settings' overrides."""
        s = self.settings
        return thresholds_for(
            self.pack,
            match=s.match_threshold,
            erase=s.erase_threshold,
            suppress=s.suppress_threshold,
        )

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = build_calibration(self.settings, self.pack)
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
        """Make the index hold exactly the catalog's faces (after a crash, another process's
        writes, or a lost index). An engine's own index compares the ids changed since its
        saved stamp, and every id only where that cannot settle it (see index/synced.py);
        a bare index given to the constructor takes equal counts as agreement.
        Returns (vectors added, vectors removed)."""
        if isinstance(self.index, SyncedIndex):
            return self.index.reconcile(full=full)
        if not full and self.index.count() == self.catalog.count_faces():
            return 0, 0
        added, removed = compare_all(self.index, self.catalog)
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
        image_screen: ImageScreen | None = None,
        in_process: bool = False,
        guard: CommitGuard | None = None,
        refuse: Mapping[str, str] | None = None,
    ) -> IngestSummary:
        record = self.catalog.get_source(source_name)
        source = build_source(record, self.settings)
        state = WorkerState(self.settings, self.analyzer) if in_process else None
        with ExitStack() as stack:
            runner = None
            if self.settings.runner == "ray" and state is None:
                from faceindex.pipeline.ray_runner import RayRunner

                s = self.settings
                ray = RayRunner(s, address=s.ray_address, actors=s.workers, refuse=refuse)
                runner = stack.enter_context(ray)
            return run_ingest(
                settings=self.settings,
                catalog=self.catalog,
                index=self.index,
                source=source,
                source_id=record.id,
                model=model_tag(self.settings, self.pack),
                progress=progress,
                screen=screen,
                image_screen=image_screen,
                state=state,
                runner=runner,
                guard=guard,
                refuse=refuse,
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
        analyzer = self.probe_analyzer or self.analyzer
        found = analyzer.analyze_image(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
        faces = list(found.faces)
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

    def probe_template(self, images: Sequence[bytes]) -> tuple[np.ndarray, list[float]]:
        """The largest face of each photo of one person: (descriptors, qualities)."""
        s = self.settings
        analyzer = self.probe_analyzer or self.analyzer
        vecs, qualities = [], []
        for n, image in enumerate(images, 1):
            faces = analyzer.analyze_image(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
            if not faces.faces:
                raise NoFaceError(f"no face found in probe photo {n}")
            face = max(faces.faces, key=lambda f: f.bbox.area)
            vecs.append(np.asarray(face.embedding, dtype=np.float32))
            qualities.append(face.quality.score)
        if not vecs:
            raise NoFaceError("give at least one photo of the person")
        return np.stack(vecs), qualities

    def search_template(
        self,
        template: np.ndarray,
        qualities: list[float],
        *,
        fusion: Fusion = "best-of",
        top_k: int | None = None,
        sources: Collection[str] | None = None,
        exclude: Collection[int] = (),
        match_bound: float | None = None,
    ) -> SearchResult:
        """Several descriptors of one person searched as one (search/template.py)."""
        s = self.settings
        return match_template(
            self.catalog,
            self.index,
            template,
            qualities=qualities,
            top_k=top_k or s.top_k,
            decider=self.decider(match_bound),
            fusion=fusion,
            sources=sources,
            exclude=exclude,
            normalise=self.pack.normalise,
            match_quality=s.match_quality,
        )

    def verify(
        self,
        photo_a: bytes,
        photo_b: bytes,
        *,
        face_a: int | None = None,
        face_b: int | None = None,
        match_bound: float | None = None,
    ) -> Verification:
        """1:1: the chosen (default: largest) face of each photo, decided with N = 1."""
        s = self.settings
        return verify_photos(
            self.probe_analyzer or self.analyzer,
            photo_a,
            photo_b,
            self.decider(match_bound),
            max_pixels=s.max_pixels,
            max_bytes=s.max_bytes,
            face_a=face_a,
            face_b=face_b,
        )

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.catalog.stats())
        out["skipped"] = len(self.catalog.failures(skipped=True))  # listed, not read: why
        out["images_unheld"] = len(self.catalog.unheld_images())  # replaced in place: gc
        out["photo_groups"] = self.catalog.count_groups()  # near-duplicate images as one photo
        out["index_vectors"] = self.index.count()
        out["index"] = self.settings.resolved_index_url
        out["model"] = self.pack.identity.describe()
        out["catalog"] = self.settings.resolved_catalog_url
        return out


def _follow(backend: VectorIndex, catalog: Catalog, home: Path) -> VectorIndex:
    """The index following every process's writes to the catalog (index/synced.py); its
    stamp lives with the index files where there are some, else in the home."""
    where = getattr(backend, "directory", None)
    return SyncedIndex(backend, catalog, where if isinstance(where, Path) else home)
