"""The same photo, wherever it was found (issue 10): a JPEG re-encoded at quality 60 and a
3/4 resize of it, in other sources, come back as ONE search result listing all three
locations; erasing one source keeps the others' locations; a near-duplicate of an erased
image is refused at ingest, and ``erase verify`` fails when one is held again. Real models
on scikit-image's astronaut."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.service import Governance
from faceindex.search.result import search_dict
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("groups-photos")
    img = Image.fromarray(astronaut).resize((420, 420))  # one face at this size
    q60 = _jpeg(img, 60)
    small = Image.open(io.BytesIO(q60)).resize((img.width * 3 // 4, img.height * 3 // 4))
    files = {
        "press": ("orig.jpg", to_jpeg(np.asarray(img))),
        "web": ("q60.jpg", q60),
        "blog": ("small.jpg", _jpeg(small, 85)),
        "later": ("q40-grey.jpg", _jpeg(img.convert("L"), 40)),  # ingested after erasures
    }
    out = {}
    for name, (file, data) in files.items():
        (root / name).mkdir()
        (root / name / file).write_bytes(data)
        out[name] = root / name
    return out


def add(gov: Governance, name: str, folder: Path) -> None:
    gov.add_source(name, path=str(folder), owner="o", legal_basis="consent", retention_days=30)


@pytest.fixture(scope="module")
def ingested(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("groups") / "home"
    with (
        Engine.open(Settings.load(home, workers=1), create=True) as eng,
        Governance.open(eng) as gov,
    ):
        for name in ("press", "web", "blog"):
            add(gov, name, folders[name])
            assert gov.ingest(name, in_process=True).faces_indexed == 1
    return home


@pytest.fixture
def gov(ingested: Path, tmp_path: Path) -> Iterator[Governance]:
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    with Engine.open(Settings.load(home, workers=1)) as eng, Governance.open(eng) as g:
        yield g


def images(gov: Governance) -> list[int]:
    cat = gov.engine.catalog
    return sorted({f.image_id for f in cat.faces(cat.live_face_ids().tolist()).values()})


def probe(astronaut: np.ndarray) -> bytes:
    return to_jpeg(np.asarray(Image.fromarray(astronaut).resize((400, 400))), 80)


def test_a_q60_copy_and_its_3_4_resize_come_back_as_one_result_with_three_locations(
    gov: Governance, astronaut: np.ndarray
) -> None:
    eng = gov.engine
    assert eng.catalog.stats()["images"] == 3 and eng.catalog.count_groups() == 1
    (face,) = eng.search(probe(astronaut), top_k=5, largest=True)
    assert len(face.matches) == 1  # before: three rows, one per copy
    (m,) = face.matches
    assert sorted((p.source, p.locator) for p in m.locations) == [
        ("blog", "small.jpg"),
        ("press", "orig.jpg"),
        ("web", "q60.jpg"),
    ]
    assert len(m.group_faces) == 3 and m.group_faces[0] == m.face_id
    assert len({p.image_id for p in m.locations}) == 3 and m.group_id is not None
    body = search_dict([face], case_reference="C-1", purpose="t")
    row = body["faces"][0]["matches"][0]  # type: ignore[index]
    assert len(row["provenance"]) == 3 and row["photo_group"] == m.group_id
    # a search restricted to one source lists that source's location only
    (only,) = eng.search(probe(astronaut), top_k=5, sources=["web"], largest=True)
    assert [(p.source, p.locator) for p in only.matches[0].locations] == [("web", "q60.jpg")]


def test_erasing_one_source_keeps_the_other_sources_locations(
    gov: Governance, astronaut: np.ndarray
) -> None:
    eng = gov.engine
    (group,) = set(eng.catalog.image_groups(images(gov)).values())
    receipt = gov.erase_source("press", reason="request 3")
    assert receipt.images_deleted == 1  # orig.jpg: only press held those bytes
    assert receipt.photo_groups == (group,) and receipt.photo_groups_removed == ()
    (face,) = eng.search(probe(astronaut), top_k=5, largest=True)
    (m,) = face.matches
    assert sorted(p.source for p in m.locations) == ["blog", "web"]
    check = gov.verify_receipt(receipt.id)  # the copies other sources hold were kept
    assert check.ok, check.problems
    for name in ("web", "blog"):
        last = gov.erase_source(name, reason="request 3")
    assert last.photo_groups_removed == (group,) and gov.engine.catalog.count_groups() == 0


def test_a_near_duplicate_of_an_erased_image_is_refused_at_ingest(
    gov: Governance, folders: dict[str, Path]
) -> None:
    cat = gov.engine.catalog
    receipt = gov.erase_images(images(gov), reason="request 4")
    assert receipt.images_deleted == 3 and cat.count_groups() == 0
    add(gov, "later", folders["later"])
    summary = gov.ingest("later", in_process=True)  # greyscale, quality 40: new bytes
    assert summary.images_new == 0 and summary.faces_indexed == 0
    ((locator, why),) = summary.skipped
    assert locator == "q40-grey.jpg"
    assert why.startswith(f"near-duplicate of erased (receipt {receipt.id})")
    assert gov.verify_receipt(receipt.id).ok
    # an ingest that raced the erasure (screened before the tombstone) holds a copy again:
    # verify sees it by its perceptual hash
    gov.engine.ingest("later", in_process=True)
    (held,) = images(gov)
    check = gov.verify_receipt(receipt.id)
    assert not check.ok and check.near_duplicates_held == (held,)
    assert any("near-duplicates of erased images" in p for p in check.problems)
