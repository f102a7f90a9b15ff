"""`import faceindex` does no work; models are checked against their recorded checksums."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faceindex.errors import ModelError
from faceindex.vision.models import DLIB_CNN, DLIB_LANDMARKS_5, DLIB_RESNET, model_path

pytestmark = pytest.mark.unit


def test_import_loads_nothing_and_writes_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, faceindex\n"
        "heavy = [m for m in ('dlib', 'faiss', 'numpy', 'PIL', 'fastapi') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "FACEINDEX_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert out.stdout.strip() == ""
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", [DLIB_RESNET, DLIB_LANDMARKS_5, DLIB_CNN], ids=lambda s: s.name)
def test_shipped_models_pass_their_checksums(spec: object) -> None:
    assert model_path(spec).is_file()  # type: ignore[arg-type]


def test_checksum_mismatch_is_an_error() -> None:
    altered = dataclasses.replace(DLIB_LANDMARKS_5, sha256="0" * 64)
    with pytest.raises(ModelError, match="checksum mismatch"):
        model_path(altered)


def test_missing_model_package_is_an_error() -> None:
    missing = dataclasses.replace(DLIB_RESNET, package="no_such_models_package")
    with pytest.raises(ModelError, match="pip install"):
        model_path(missing)
