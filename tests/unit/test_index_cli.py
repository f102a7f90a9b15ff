"""faceindex index stats / build / compact, driven through the CLI on a real engine home."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceindex.catalog.base import ImageOutcome
from faceindex.cli import app
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.audit import AuditLog
from faceindex.types import BBox, DetectedFace, FaceQuality

pytestmark = pytest.mark.e2e


def _face(vec: np.ndarray) -> DetectedFace:
    return DetectedFace(
        bbox=BBox(10, 10, 60, 60),
        landmarks=((1.0, 2.0),),
        detector="hog",
        detector_score=1.0,
        quality=FaceQuality(size=50, sharpness=100.0, pose=0.0, score=0.9),
        embedding=vec.astype(np.float32),
        thumbnail=b"t",
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An engine home whose catalog holds 600 faces (synthetic embeddings, one per image)."""
    home = tmp_path / "home"
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    vecs = rng.normal(0, 0.05, (600, 128))
    with Engine.open(Settings.load(home), create=True) as engine:
        src = engine.add_source(
            "archive", path=str(photos), owner="ops", legal_basis="consent", retention_days=30
        )
        outcomes = [
            ImageOutcome(src.id, f"img{i}.jpg", 1, 1.0, f"{i:064x}", 100, 100, (_face(v),))
            for i, v in enumerate(vecs)
        ]
        new = engine.catalog.record(outcomes, "test-model")
        engine.index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
    # stored options are how a home keeps its index settings (the URL may add to them)
    (home / "index" / "index.json").write_text(json.dumps({"train_min": 300, "nlist": 8}))
    return home


def run(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


def test_stats_build_compact(home: Path) -> None:
    st = run("index", "stats", "--home", str(home))
    assert st["kind"] == "flat" and st["count"] == st["catalog_faces"] == 600
    built = run("index", "build", "--kind", "ivf", "--home", str(home))
    assert built["rebuilt"] == 600 and built["kind"] == "ivf-pq"
    assert built["trained_on"] == 600 and built["ram_bytes"] > 0 and built["disk_bytes"] > 0
    with Engine.open(Settings.load(home)) as engine:
        engine.catalog.delete_faces([1, 2, 3])
        engine.index.remove(np.array([1, 2, 3]))
    assert run("index", "stats", "--home", str(home))["garbage"] == 3
    compacted = run("index", "compact", "--home", str(home))
    assert compacted["dropped"] == 3 and compacted["garbage"] == 0 and compacted["count"] == 597
    again = run("index", "build", "--kind", "flat", "--home", str(home))
    assert again["kind"] == "flat" and again["count"] == 597
    log = AuditLog(home / "audit.db")
    events = [e.event for e in log.entries() if e.event.action.startswith("index-")]
    log.close()
    assert [(e.action, e.details.get("vectors", e.details.get("dropped"))) for e in events] == [
        ("index-build", 600),
        ("index-compact", 3),
        ("index-build", 597),
    ]


def test_build_refuses_unknown_kind_and_readers(home: Path) -> None:
    result = CliRunner().invoke(app, ["index", "build", "--kind", "hnsw", "--home", str(home)])
    assert result.exit_code == 2 and "--kind" in result.output
    for role, command in (("auditor", "build"), ("investigator", "compact")):
        result = CliRunner(env={"FACEINDEX_ACTOR_ROLE": role}).invoke(
            app, ["index", command, "--home", str(home)]
        )
        assert result.exit_code == 6 and "manage-index" in result.output, result.output
    log = AuditLog(home / "audit.db")
    denied = [e.event.details for e in log.entries() if e.event.outcome == "denied"]
    log.close()
    assert denied == [{"action": "index-build"}, {"action": "index-compact"}]
