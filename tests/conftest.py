"""Fixtures shared by every test folder. Stores live in tmp_path; models are the real ones."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.config import Settings

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    """../shared/faces beside the checkout (real labeled photos); skip where absent."""
    if not (SHARED_FACES / "README.md").is_file():
        pytest.skip(f"needs the real face photos at {SHARED_FACES} (absent on this machine)")
    return SHARED_FACES


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut(): one real face (Eileen Collins), shipped in the package."""
    from skimage import data

    return np.asarray(data.astronaut())


def to_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh engine home in tmp_path, one in-process worker."""
    return Settings.load(tmp_path / "home", workers=1)


@pytest.fixture
def engine(settings: Settings) -> Iterator[object]:
    from faceindex.engine import Engine

    with Engine.open(settings, create=True) as eng:
        yield eng


@pytest.fixture(scope="session")
def analyzer() -> object:
    """The default face models, loaded once per test session."""
    from faceindex.engine import build_analyzer

    return build_analyzer(Settings.load("/nonexistent-home-for-analyzer"))
