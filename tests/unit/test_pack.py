"""Model packs: the built-in dlib pack, loading a user's pack directory, thresholds, records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from faceindex.errors import ConfigError, ModelError
from faceindex.model_record import RECORD_FILE, check_model, read_record
from faceindex.vision.pack import (
    DLIB_PACK,
    calibration_name,
    calibration_path,
    chord_of_cosine,
    resolve_pack,
    thresholds_for,
)
from faceindex.vision.similarity import ARCFACE_112

pytestmark = pytest.mark.unit

onnx = pytest.importorskip("onnx", reason="pack graphs are built with the onnx package")

from tests.packs import DIM, write_pack  # noqa: E402  (needs onnx)


def test_the_dlib_pack_holds_todays_numbers() -> None:
    assert (DLIB_PACK.dim, DLIB_PACK.metric, DLIB_PACK.index_metric) == (128, "l2", "l2")
    t = DLIB_PACK.thresholds
    assert (t.match, t.possible, t.erase, t.suppress) == (0.6, 0.65, 0.5, 0.6)
    assert resolve_pack("dlib") is DLIB_PACK
    assert calibration_name(DLIB_PACK, "dlib-resnet-v1+mirror@1") == "dlib-resnet-v1+mirror@1"
    assert calibration_path(DLIB_PACK, "dlib-resnet-v1+mirror@1") is None
    assert not DLIB_PACK.normalise


def test_an_unknown_model_name_says_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'arcface'.*dlib"):
        resolve_pack("arcface")
    with pytest.raises(ConfigError, match="neither pack.toml nor pack.json"):
        resolve_pack(str(tmp_path))


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_a_pack_directory_loads_with_its_files_verified(tmp_path: Path, fmt: str) -> None:
    root = write_pack(tmp_path / "p", fmt=fmt, named_outputs=True)
    pack = resolve_pack(str(root))
    assert (pack.name, pack.version, pack.dim, pack.metric) == ("standin", "1", DIM, "cosine")
    assert (pack.detector, pack.aligner, pack.embedder) == ("scrfd", "similarity-5", "arcface")
    assert pack.input_size == 112 and pack.detector_input == 64
    assert pack.template == ARCFACE_112
    assert pack.normalisation.mean == 127.5 and pack.normalisation.std == 127.5
    assert pack.detector_normalisation.std == 128.0
    assert len(pack.detector_outputs) == 9
    assert pack.thresholds.match == 0.3
    assert pack.file("embedder") == root.resolve() / "rec.onnx"
    assert calibration_name(pack, "t") == ("standin" if fmt == "toml" else None)
    shipped = root.resolve() / "standin.calibration.json"  # write_pack ships one
    assert calibration_path(pack, "t") == (shipped if fmt == "toml" else None)
    shipped.unlink()
    assert calibration_path(pack, "t") is None
    assert pack.identity.describe() == f"standin@1 ({DIM}-d, cosine)"


def test_an_altered_file_fails_its_checksum(tmp_path: Path) -> None:
    root = write_pack(tmp_path / "p")
    with open(root / "rec.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match=r"checksum mismatch for rec.onnx"):
        resolve_pack(str(root))
    (root / "rec.onnx").unlink()
    with pytest.raises(ModelError, match="model file missing"):
        resolve_pack(str(root))


def _rewrite(root: Path, old: str, new: str) -> None:
    text = (root / "pack.toml").read_text()
    assert old in text
    (root / "pack.toml").write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('metric = "cosine"', 'metric = "ip"', "metric must be one of l2, cosine"),
        ("dim = 16\n", "", "missing 'dim'"),
        ('name = "standin"', 'name = "standin"\ncolour = "blue"', "unknown key.*colour"),
        ('kind = "scrfd"', 'kind = "retinaface"', "detector kind 'retinaface'"),
        ('file = "det.onnx"', 'file = "../det.onnx"', "inside the pack directory"),
        ("match = 0.3", 'match = "near"', "'match' has the wrong type"),
        ("possible = 0.4", "possible = 0.2", "'possible' threshold .* is below 'match'"),
        ("dim = 16", "dim = 0", "must be positive"),
        ("[aligner]", "[aligner]\ntemplate = [[1, 2], [3, 4]]", "template has 2 points"),
        ('name = "standin"', 'name = "standin', "unterminated|Illegal|Expected"),
    ],
)
def test_pack_mistakes_are_config_errors_naming_the_file(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    root = write_pack(tmp_path / "p")
    _rewrite(root, old, new)
    with pytest.raises(ConfigError, match=message) as err:
        resolve_pack(str(root))
    assert "pack.toml" in str(err.value)


def test_a_bad_sha256_is_refused(tmp_path: Path) -> None:
    root = write_pack(tmp_path / "p")
    text = (root / "pack.toml").read_text()
    start = text.index('sha256 = "') + len('sha256 = "')
    (root / "pack.toml").write_text(text[:start] + "xyz" + text[start + 64 :])
    with pytest.raises(ConfigError, match="not 64 hex digits"):
        resolve_pack(str(root))


def test_settings_override_the_packs_thresholds() -> None:
    assert thresholds_for(DLIB_PACK) == DLIB_PACK.thresholds
    t = thresholds_for(DLIB_PACK, match=0.7, erase=0.4)
    assert (t.match, t.possible, t.erase, t.suppress) == (0.7, 0.7, 0.4, 0.6)
    assert thresholds_for(DLIB_PACK, match=0.55).possible == 0.65
    with pytest.raises(ConfigError, match="below 'match'"):
        thresholds_for(DLIB_PACK, match=0.6, possible=0.5)


def test_cosine_thresholds_convert_to_unit_vector_distances() -> None:
    assert chord_of_cosine(1.0) == 0.0
    assert chord_of_cosine(0.0) == pytest.approx(math.sqrt(2))
    assert chord_of_cosine(-1.0) == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        chord_of_cosine(1.5)


def test_a_new_home_records_its_model_and_refuses_another(tmp_path: Path) -> None:
    other = resolve_pack(str(write_pack(tmp_path / "p")))
    home = tmp_path / "home"
    home.mkdir()
    check_model(home, other, has_gallery=False)
    assert read_record(home) == other.identity
    check_model(home, other, has_gallery=True)  # the same model opens
    with pytest.raises(ConfigError) as err:
        check_model(home, DLIB_PACK, has_gallery=True)
    text = str(err.value)
    assert f"standin@1 ({DIM}-d, cosine)" in text and "dlib@resnet-v1 (128-d, l2)" in text
    assert "reembed" in text


def test_a_home_from_before_packs_holds_dlib_faces(tmp_path: Path) -> None:
    other = resolve_pack(str(write_pack(tmp_path / "p")))
    home = tmp_path / "home"
    home.mkdir()
    with pytest.raises(ConfigError, match="built with model dlib"):
        check_model(home, other, has_gallery=True)
    assert json.loads((home / RECORD_FILE).read_text())["dim"] == 128


def test_an_unreadable_record_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / RECORD_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable model record"):
        read_record(tmp_path)
