"""An InsightFace-layout pack a user brings by path, end to end: detect with the SCRFD-style
graph, align onto ArcFace's template, embed with the recogniser graph, index (16-d, cosine),
search, opt out, and refuse to mix models in one home. The graphs are generated stand-ins
(``tests/packs.py``): no real weights of that kind are reachable here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.errors import ConfigError
from faceindex.model_record import read_record
from faceindex.vision.factory import build_analyzer
from faceindex.vision.pack import ModelPack, resolve_pack
from faceindex.vision.similarity import ARCFACE_112
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration

pytest.importorskip("onnx", reason="the pack's graphs are built with the onnx package")
pytest.importorskip("onnxruntime", reason="ONNX packs run on onnxruntime")

from tests.packs import DIM, face_picture, write_pack  # noqa: E402  (needs onnx)


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "standin-pack", named_outputs=True)


@pytest.fixture
def pack(pack_dir: Path) -> ModelPack:
    return resolve_pack(str(pack_dir))


def test_the_detector_finds_each_face_with_its_landmarks(pack: ModelPack, tmp_path: Path) -> None:
    analyzer = build_analyzer(Settings.load(tmp_path / "h"), pack)
    faces = analyzer.analyze(face_picture(1, quadrants=(0, 3)))
    boxes = sorted(f.bbox.as_list() for f in faces)
    assert boxes == [[0, 0, 64, 64], [64, 64, 128, 128]]
    for face in faces:
        left, top = face.bbox.left, face.bbox.top
        expected = np.asarray(ARCFACE_112) / 112 * 64 + [left, top]
        np.testing.assert_allclose(face.landmarks, expected, atol=1e-3)
        assert face.embedding.shape == (DIM,)
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        assert face.quality.pose < 0.05 and face.detector == "scrfd"
    same = [f.embedding for f in faces]
    assert np.linalg.norm(same[0] - same[1]) < 0.05  # one person, two places


def test_pictures_without_a_face_give_none(pack: ModelPack, tmp_path: Path) -> None:
    analyzer = build_analyzer(Settings.load(tmp_path / "h"), pack)
    assert analyzer.analyze(np.zeros((90, 160, 3), dtype=np.uint8)) == []


def _register(engine: Engine, name: str, folder: Path) -> None:
    engine.add_source(
        name, path=str(folder), owner="Test desk", legal_basis="contract", retention_days=30
    )


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for person in range(1, 6):
        (folder / f"person{person}.jpg").write_bytes(to_jpeg(face_picture(person)))
    (folder / "pair-1-2.jpg").write_bytes(
        to_jpeg(np.maximum(face_picture(1, (0,)), face_picture(2, (3,))))
    )
    (folder / "broken.jpg").write_bytes(b"not a picture")
    return folder


@pytest.fixture
def engine(tmp_path: Path, pack_dir: Path, gallery: Path) -> Iterator[Engine]:
    settings = Settings.load(tmp_path / "home", workers=1, model=str(pack_dir))
    with Engine.open(settings, create=True) as eng:
        _register(eng, "photos", gallery)
        yield eng


def test_ingest_and_search_run_on_the_packs_models(engine: Engine) -> None:
    summary = engine.ingest("photos", in_process=True)
    assert summary.images_new == 6 and summary.faces_indexed == 7
    assert [loc for loc, _ in summary.failed] == ["broken.jpg"]
    assert engine.index.dim == DIM and engine.pack.metric == "cosine"
    assert engine.thresholds.match == 0.3

    results = engine.search(to_jpeg(face_picture(2), quality=80))
    (result,) = results
    top = result.matches[0]
    assert {p.locator for p in top.locations} <= {"person2.jpg", "pair-1-2.jpg"}
    assert top.decision == "match" and top.distance < 0.1
    found = {p.locator for m in result.matches if m.decision == "match" for p in m.locations}
    assert found == {"person2.jpg", "pair-1-2.jpg"}
    others = [m for m in result.matches if m.decision == "no-match"]
    assert others and all(m.distance > engine.thresholds.possible for m in others)


def test_a_multi_process_ingest_builds_the_pack_in_each_worker(
    tmp_path: Path, pack_dir: Path, gallery: Path
) -> None:
    settings = Settings.load(tmp_path / "home2", workers=2, batch_size=1, model=str(pack_dir))
    with Engine.open(settings, create=True) as eng:
        _register(eng, "photos", gallery)
        summary = eng.ingest("photos")
        assert summary.faces_indexed == 7
        assert {m.face_id for r in eng.search(to_jpeg(face_picture(4))) for m in r.matches}


def test_the_home_records_the_pack_and_refuses_another_model(
    engine: Engine, tmp_path: Path
) -> None:
    engine.ingest("photos", in_process=True)
    home = engine.settings.home
    assert read_record(home) == engine.pack.identity
    engine.close()
    with pytest.raises(ConfigError) as err:
        Engine.open(Settings.load(home, workers=1, model="dlib"))
    message = str(err.value)
    assert f"standin@1 ({DIM}-d, cosine)" in message and "dlib@resnet-v1 (128-d, l2)" in message
    # and the home opens again, unchanged, with its own model: named, or by default
    with Engine.open(Settings.load(home, workers=1, model=engine.settings.model)) as again:
        assert again.index.count() == 7
    with Engine.open(Settings.load(home, workers=1)) as again:
        assert again.pack.name == "standin" and again.index.count() == 7


def test_opt_out_screens_with_the_packs_dimension_and_threshold(engine: Engine) -> None:
    from faceindex.governance.service import Governance

    engine.ingest("photos", in_process=True)
    with Governance.open(engine) as gov:
        assert gov.store.dim == DIM
        out = gov.opt_out([to_jpeg(face_picture(3))], reference="OPT-3")
        assert out.receipt.faces_deleted == 1
        assert gov.store.suppression_templates().shape == (1, DIM)
        results = gov.search(to_jpeg(face_picture(3)), case="T", purpose="testing")
        assert all(m.decision != "match" for r in results for m in r.matches)


def test_init_records_the_model_and_later_commands_use_it(pack_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceindex.cli import app

    home = tmp_path / "cli-home"
    made = CliRunner().invoke(app, ["init", "--home", str(home), "--model", str(pack_dir)])
    assert made.exit_code == 0, made.output
    assert f"standin@1 ({DIM}-d, cosine)" in made.output
    stats = CliRunner().invoke(app, ["stats", "--home", str(home), "--json"])
    assert stats.exit_code == 0, stats.output
    assert '"model": "standin@1 (16-d, cosine)"' in stats.output.replace("\n", "")
    refused = CliRunner().invoke(
        app, ["stats", "--home", str(home)], env={"FACEINDEX_MODEL": "dlib"}
    )
    assert refused.exit_code == 2
    assert "built with model standin@1" in " ".join(refused.output.split())


def test_a_pack_whose_sizes_disagree_with_its_graphs_fails_to_load(
    pack_dir: Path, tmp_path: Path
) -> None:
    from faceindex.errors import ModelError

    text = (pack_dir / "pack.toml").read_text()
    (pack_dir / "pack.toml").write_text(text.replace("input_size = 64", "input_size = 96"))
    with pytest.raises(ModelError, match="the pack says 96"):
        build_analyzer(Settings.load(tmp_path / "h"), resolve_pack(str(pack_dir)))
