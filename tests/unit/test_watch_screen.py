"""Which new faces alert which watch (governance/watch_screen.py), with the default model's
own calibration: the band's N, the watch's generation and sources, the nearest template."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.catalog.base import FaceRow
from faceindex.catalog.watch_rows import WatchRecord, WatchTemplates
from faceindex.config import Settings
from faceindex.governance.watch_screen import NewFace, Screened, alerts_for, watch_compared
from faceindex.search.scoring import Decider
from faceindex.types import BBox, Provenance

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    from faceindex.engine import build_calibration
    from faceindex.vision.factory import settings_pack

    settings = Settings.load(tmp_path_factory.mktemp("h") / "home")
    return Decider(build_calibration(settings, settings_pack(settings)), match_quality=0.3)


DIM = 128
RNG = np.random.default_rng(7)
T1 = RNG.normal(size=DIM).astype(np.float32) * 0.05
T2 = RNG.normal(size=DIM).astype(np.float32) * 0.05


def _at(template: np.ndarray, distance: float, seed: int = 0) -> np.ndarray:
    step = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return (template + step / np.linalg.norm(step) * distance).astype(np.float32)


def _face(fid: int, vec: np.ndarray, *, gen: int = 5, sources: tuple[str, ...] = ("a",)) -> NewFace:
    row = FaceRow(
        id=fid,
        image_id=fid * 10,
        image_sha256="ab" * 32,
        bbox=BBox(0, 0, 10, 10),
        quality=0.9,
        model="m",
        created_at="",
        deleted=False,
        locations=tuple(Provenance(s, f"{s}/{fid}.jpg", "2026-01-01") for s in sources),
    )
    return NewFace(row, gen, vec)


def _watch(
    *templates: np.ndarray,
    qualities: tuple[float, ...] | None = None,
    scope: frozenset[str] | None = None,
    gallery: int = 10,
    from_generation: int = 1,
) -> Screened:
    rec = WatchRecord(
        1, "ann", "C", "p", "photo", None, "", (), "m", "", "", from_generation, "live", None, 1
    )
    quals = np.asarray(qualities or (0.9,) * len(templates))
    held = WatchTemplates(np.stack(templates), quals)
    return Screened(rec, held, scope, watch_compared(len(templates), gallery))


def test_the_band_is_judged_against_templates_times_faces_in_scope(decider: Decider) -> None:
    d = decider.calibration.distance_for_fmr(1e-4)  # 1 stranger in 10,000 comes this close
    face = _face(1, _at(T1, d * 0.99))
    (small,) = alerts_for([face], [_watch(T1, gallery=10)], decider)
    assert small.band == "match" and small.compared == 10
    assert small.distance == pytest.approx(d * 0.99, abs=1e-3)
    # The same distance in a gallery of a million: a hundred strangers that close.
    assert alerts_for([face], [_watch(T1, gallery=1_000_000)], decider) == []
    assert watch_compared(3, 1000) == 3000 and watch_compared(2, 0) == 2


def test_a_stranger_far_away_never_alerts(decider: Decider) -> None:
    far = decider.calibration.distance_for_fmr(0.5)
    assert alerts_for([_face(1, _at(T1, far))], [_watch(T1, gallery=1)], decider) == []


def test_only_faces_after_the_watch_and_in_its_sources_are_screened(decider: Decider) -> None:
    close = _at(T1, 0.01)
    faces = [
        _face(1, close, gen=1),  # added at the watch's own generation: before it
        _face(2, close, gen=2, sources=("b",)),  # in a source it does not watch
        _face(3, close, gen=2, sources=("b", "a")),  # held in both: alerts, shown in "a"
    ]
    hits = alerts_for(faces, [_watch(T1, scope=frozenset({"a"}))], decider)
    assert [h.face_id for h in hits] == [3]
    assert [p.source for p in hits[0].locations] == ["a"]
    assert hits[0].image_id == 30


def test_the_nearest_template_decides_and_its_quality_counts(decider: Decider) -> None:
    face = _face(1, _at(T2, 0.01))
    (hit,) = alerts_for([face], [_watch(T1, T2, qualities=(0.9, 0.1))], decider)
    assert hit.distance < 0.02  # the second template's distance, not the first's
    assert hit.band == "possible"  # a poor template face is never called a match
    (good,) = alerts_for([face], [_watch(T1, T2)], decider)
    assert good.band == "match" and good.compared == 20


def test_every_near_face_alerts_whatever_its_place_in_the_batch(decider: Decider) -> None:
    far = decider.calibration.distance_for_fmr(0.5)
    batch = [_face(i, _at(T1, far, seed=i)) for i in range(1, 40)]
    batch.insert(7, _face(100, _at(T1, 0.02, seed=1)))
    batch.append(_face(101, _at(T1, 0.03, seed=2)))
    hits = alerts_for(batch, [_watch(T1, gallery=len(batch))], decider)
    assert sorted(h.face_id for h in hits) == [100, 101]
