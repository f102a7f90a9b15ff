"""A live faceindex server on 127.0.0.1 over a tiny real gallery, for browser and HTTP tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceindex.config import Settings
from tests.live import serve_in_thread

# One photo of each of four people; the probes in the tests are *other* photos of them.
GALLERY = {
    "obama": "obama/obama.jpg",
    "biden": "biden/biden.jpg",
    "kit_harington": "kit_harington/john1.jpeg",
    "rose_leslie": "rose_leslie/img1.jpg",
}


@dataclass(frozen=True)
class LiveServer:
    url: str
    tokens: dict[str, str]  # role -> token
    home: Path
    knn: Path  # ../shared/faces/face-recognition-knn


@pytest.fixture(scope="module")
def live_server(
    shared_faces: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:

    from faceindex.engine import Engine
    from faceindex.server.accounts import AccountStore
    from faceindex.server.app import create_app

    root = tmp_path_factory.mktemp("live")
    knn = shared_faces / "face-recognition-knn"
    photos = root / "photos"
    for person, rel in GALLERY.items():
        (photos / person).mkdir(parents=True)
        shutil.copy(knn / rel, photos / person / Path(rel).name)
    settings = Settings.load(root / "home", workers=1)
    engine = Engine.open(settings, create=True)
    engine.add_source(
        "press", path=str(photos), owner="Press office", legal_basis="consent", retention_days=365
    )
    engine.ingest("press", in_process=True)
    # photo groups: a re-encoded copy of the gallery's Obama photo, found in another source
    mirror = root / "mirror"
    mirror.mkdir()
    from PIL import Image

    Image.open(knn / GALLERY["obama"]).convert("RGB").save(mirror / "obama-q60.jpg", quality=60)
    engine.add_source(
        "mirror", path=str(mirror), owner="Web desk", legal_basis="consent", retention_days=365
    )
    engine.ingest("mirror", in_process=True)
    store = AccountStore.for_home(settings.home)
    tokens = {
        role: store.add(f"{role}-user", role) for role in ("admin", "investigator", "auditor")
    }
    store.close()

    app = create_app(settings, engine=engine)
    with serve_in_thread(app) as url:
        yield LiveServer(url, tokens, settings.home, knn)
