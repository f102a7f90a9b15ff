"""Moving a home to another model: every held image re-read through its source and embedded
again, into a new catalog and index built beside the old ones, switched in only when complete.

Where it builds: ``<home>/reembed/<model>/`` holds the new ``catalog.db``, ``index/`` and
``model.json`` while they fill. A crash leaves them there; running reembed again resumes
(the ingest runner skips items the new catalog already holds). The switch moves the old
files out and the new ones in, journaled in ``state.json``, so an interrupted switch is
completed by whatever opens the home next (``Engine.open``); the old catalog and index are
then deleted.

What the new gallery holds is what the old one held, no more:

- only items the old catalog holds are re-read (erased images and sources stay erased, even
  where their files are still in the source);
- in each image, only the new model's faces that overlap a face the old catalog still holds
  (IoU >= 0.5, one to one) are kept: a face erased on its own, or screened out by an opt-out,
  has no row and so does not come back; an old face the new model cannot find is counted;
- each item keeps its first ``ingested_at``, so retention runs from the original ingest;
- new ids continue after the old catalog's, so no id in an audit entry or a receipt is
  reused.

Refused: homes whose catalog or index is not the default SQLite / FAISS pair in the home
(reembed moves files), and homes with opt-out suppressions (their templates are the old
model's, the photos they came from are not kept, so they cannot be carried across).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from faceindex.backends import open_index
from faceindex.catalog.base import ImageOutcome, NewSource
from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.engine import Engine, build_source
from faceindex.errors import ConfigError, InputError
from faceindex.home_switch import switch, write_state
from faceindex.model_record import check_model
from faceindex.pipeline.runner import Progress_cb, run_ingest
from faceindex.pipeline.worker import WorkerState
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.types import BBox
from faceindex.vision.factory import model_tag
from faceindex.vision.pack import ModelPack

__all__ = ["ReembedReport", "reembed", "staging_dir"]

log = logging.getLogger(__name__)

KEEP_IOU = 0.5
_SEQUENCES = ("sources", "images", "items", "faces")


@dataclass(frozen=True)
class ReembedReport:
    model_from: str
    model_to: str
    images: int  # images re-read and held in the new gallery
    faces: int  # faces in the new gallery
    faces_not_found: int  # old faces the new model found no counterpart for
    faces_dropped: int  # new-model faces with no old face under them (not kept)
    items_gone: int  # items the old catalog held that their source no longer lists
    failed: int  # items that could not be read or decoded this time
    receipt_probes_dropped: int


def staging_dir(home: Path, pack: ModelPack) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{pack.name}@{pack.version}")
    return home / "reembed" / slug


def _check_layout(engine: Engine) -> None:
    s = engine.settings
    if s.catalog_url or s.index_url:
        raise InputError(
            "reembed moves the home's own catalog.db and index/: it cannot move a catalog or "
            "index configured by URL (catalog_url / index_url)"
        )


class _StagingCatalog(SqliteCatalog):
    """The new catalog: records only faces the old catalog holds, keeps items' first ingest."""

    def __init__(self, path: Path, old: _OldGallery) -> None:
        super().__init__(path)
        self._old = old
        self.not_found = 0
        self.dropped = 0

    def record(self, outcomes: Sequence[ImageOutcome], model: str) -> list[tuple[int, np.ndarray]]:
        kept = [self._match(o) for o in outcomes]
        new = super().record(kept, model)
        with self.transaction() as tx:
            for o in kept:
                first = self._old.ingested_at.get((o.source_id, o.locator))
                if first is not None:
                    tx.execute(
                        "UPDATE items SET ingested_at = ? WHERE source_id = ? AND locator = ?",
                        (first, o.source_id, o.locator),
                    )
        return new

    def _match(self, o: ImageOutcome) -> ImageOutcome:
        if o.error or o.sha256 is None:
            return o
        old = list(self._old.boxes.pop(o.sha256, []))
        faces = []
        for face in sorted(o.faces, key=lambda f: -f.detector_score):
            best = max(range(len(old)), key=lambda i: face.bbox.iou(old[i]), default=None)
            if best is not None and face.bbox.iou(old[best]) >= KEEP_IOU:
                faces.append(face)
                old.pop(best)
        self.dropped += len(o.faces) - len(faces)
        self.not_found += len(old)
        return replace(o, faces=tuple(faces))

    def reserve_ids(self, floors: dict[str, int]) -> None:
        """New ids continue after the old catalog's (AUTOINCREMENT's own counter)."""
        with self.transaction() as tx:
            for table, seq in floors.items():
                tx.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


@dataclass
class _OldGallery:
    """What the old catalog holds: face boxes per image, items' first ingest, id counters."""

    boxes: dict[str, list[BBox]]
    ingested_at: dict[tuple[int, str], str]  # keyed by the *new* source id
    floors: dict[str, int]

    @classmethod
    def read(cls, old: SqliteCatalog) -> _OldGallery:
        boxes: dict[str, list[BBox]] = {}
        ids = [int(i) for i in old.live_face_ids()]
        for start in range(0, len(ids), 10_000):
            for row in old.faces(ids[start : start + 10_000]).values():
                boxes.setdefault(row.image_sha256, []).append(row.bbox)
        seqs = dict(old.query("SELECT name, seq FROM sqlite_sequence"))
        floors = {t: int(seqs.get(t, 0)) for t in _SEQUENCES}
        return cls(boxes, {}, floors)


class _HeldItems:
    """The source's items that the old catalog holds (nothing it erased or never had)."""

    def __init__(self, source: ImageSource, held: set[str]) -> None:
        self._source = source
        self._held = held
        self.listed: set[str] = set()

    @property
    def kind(self) -> str:
        return self._source.kind

    @property
    def uri(self) -> str:
        return self._source.uri

    def items(self) -> Iterator[SourceItem]:
        for item in self._source.items():
            if item.locator in self._held:
                self.listed.add(item.locator)
                yield item

    def read(self, item: SourceItem) -> bytes:
        return self._source.read(item)


def reembed(
    engine: Engine,
    pack: ModelPack,
    *,
    suppressions: int,
    drop_probes: Callable[[], int],
    progress: Progress_cb | None = None,
    in_process: bool = False,
) -> ReembedReport:
    """Re-embed ``engine``'s home with ``pack`` and switch the engine over to it."""
    _check_layout(engine)
    home = engine.settings.home
    if pack.identity == engine.pack.identity:
        raise InputError(f"the home already uses {pack.identity.describe()}")
    if suppressions:
        raise InputError(
            f"the home holds {suppressions} opt-out suppression(s) whose templates are "
            f"{engine.pack.identity.describe()}'s; without the photos they came from they "
            "cannot be carried to another model, so reembed would let those people back in"
        )
    staging = staging_dir(home, pack)
    report = _build(engine, pack, staging, progress, in_process)
    # Before the switch is decided: the old model's person probes compare with nothing new,
    # and once the state says 'switching', whatever opens the home next completes it.
    dropped = drop_probes()
    write_state(staging, {"phase": "switching"})
    engine.close()
    switch(home, staging)
    engine.switch_model(
        pack,
        SqliteCatalog(home / "catalog.db"),
        open_index(f"faiss://{home / 'index'}", dim=pack.dim, metric=pack.index_metric),
    )
    log.warning("home %s moved from %s to %s", home, report.model_from, report.model_to)
    return replace(report, receipt_probes_dropped=dropped)


def _build(
    engine: Engine,
    pack: ModelPack,
    staging: Path,
    progress: Progress_cb | None,
    in_process: bool,
) -> ReembedReport:
    if not isinstance(engine.catalog, SqliteCatalog):
        raise ConfigError("reembed needs the home's SQLite catalog")
    staging.mkdir(parents=True, exist_ok=True)
    old = _OldGallery.read(engine.catalog)
    settings = engine.settings.model_copy(update={"home": staging, "model": pack.source})
    catalog = _StagingCatalog(staging / "catalog.db", old)
    try:
        fresh = not catalog.list_sources()
        check_model(staging, pack, has_gallery=not fresh)
        if fresh:
            catalog.reserve_ids(old.floors)
        index = open_index(f"faiss://{staging / 'index'}", dim=pack.dim, metric=pack.index_metric)
    except Exception:
        catalog.close()
        raise
    new = Engine(settings, catalog, index, pack)
    gone = failed = 0
    try:
        new.reconcile()
        have = {s.name: s for s in catalog.list_sources()}
        for record in engine.catalog.list_sources():
            target = have.get(record.name) or catalog.add_source(
                NewSource(
                    name=record.name,
                    kind=record.kind,
                    uri=record.uri,
                    owner=record.owner,
                    legal_basis=record.legal_basis,
                    retention_days=record.retention_days,
                    legal_reference=record.legal_reference,
                    purposes=record.purposes,
                    jurisdiction=record.jurisdiction,
                )
            )
            held_rows = engine.catalog.query(
                "SELECT locator, ingested_at FROM items WHERE source_id = ?", (record.id,)
            )
            for locator, at in held_rows:
                old.ingested_at[(target.id, str(locator))] = str(at)
            held = _HeldItems(build_source(record, engine.settings), {str(r[0]) for r in held_rows})
            summary = run_ingest(
                settings=settings,
                catalog=catalog,
                index=index,
                source=held,
                source_id=target.id,
                model=model_tag(settings, pack),
                progress=progress,
                state=WorkerState(settings, new.analyzer) if in_process else None,
            )
            gone += len(held_rows) - len(held.listed)
            failed += len(summary.failed)
        stats = catalog.stats()
        report = ReembedReport(
            model_from=engine.pack.identity.describe(),
            model_to=pack.identity.describe(),
            images=int(stats.get("images", 0)),
            faces=catalog.count_faces(),
            faces_not_found=catalog.not_found,
            faces_dropped=catalog.dropped,
            items_gone=gone,
            failed=failed,
            receipt_probes_dropped=0,
        )
    finally:
        new.close()
    return report
