"""Folder sources: every entry is listed, read or skipped with a reason; none blocks the rest."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from faceindex.errors import DecodeError, ImageTooLarge
from faceindex.sources.base import SourceItem
from faceindex.sources.folder import FolderSource

pytestmark = pytest.mark.unit

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 300
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 300


def listed(folder: Path) -> dict[str, str | None]:
    return {i.locator: i.skip for i in FolderSource(str(folder)).items()}


def test_a_non_utf8_file_name_is_listed_printably_and_read(tmp_path: Path) -> None:
    # Before: the surrogate-escaped name reached SQLite and every ingest died on it.
    with open(os.fsencode(tmp_path) + b"/caf\xe9.jpg", "wb") as fh:
        fh.write(JPEG)
    (tmp_path / "ok.jpg").write_bytes(JPEG)
    src = FolderSource(str(tmp_path))
    items = {i.locator: i for i in src.items()}
    assert set(items) == {"caf\\xe9.jpg", "ok.jpg"}
    odd = items["caf\\xe9.jpg"]
    odd.locator.encode("utf-8")  # valid UTF-8: the catalog and a terminal accept it
    assert odd.skip is None and src.read(odd) == JPEG


def test_symlink_loops_broken_and_escaping_links_are_skipped_with_why(tmp_path: Path) -> None:
    # Before: a loop raised RuntimeError out of items() and the whole ingest died; broken
    # and escaping links vanished without a record.
    folder, outside = tmp_path / "src", tmp_path / "outside.jpg"
    folder.mkdir()
    outside.write_bytes(JPEG)
    (folder / "real.jpg").write_bytes(JPEG)
    (folder / "a.jpg").symlink_to("b.jpg")
    (folder / "b.jpg").symlink_to("a.jpg")
    (folder / "broken.jpg").symlink_to("nowhere.jpg")
    (folder / "escape.jpg").symlink_to(outside)
    (folder / "inside.jpg").symlink_to("real.jpg")
    (folder / "dirlink").symlink_to(".")
    got = listed(folder)
    assert got["real.jpg"] is None and got["inside.jpg"] is None
    assert "loop" in str(got["a.jpg"]) and "loop" in str(got["b.jpg"])
    assert "broken" in str(got["broken.jpg"])
    assert "leaves the source folder" in str(got["escape.jpg"])
    assert "directory" in str(got["dirlink"])


def test_a_fifo_is_skipped_and_a_fifo_read_cannot_hang(tmp_path: Path) -> None:
    # Before: a FIFO named .jpg was listed and its read blocked ingest forever.
    os.mkfifo(tmp_path / "pipe.jpg")
    assert "FIFO" in str(listed(tmp_path)["pipe.jpg"])
    src, errors = FolderSource(str(tmp_path)), []

    def read() -> None:
        try:
            src.read(SourceItem("pipe.jpg"))  # e.g. swapped in after the listing
        except DecodeError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert errors and "FIFO" in str(errors[0])


def test_content_decides_not_the_extension(tmp_path: Path) -> None:
    # Before: a JPEG named without an image extension was dropped without a record.
    (tmp_path / "noext").write_bytes(JPEG)
    (tmp_path / "really-a-png.txt").write_bytes(PNG)
    (tmp_path / "readme").write_text("notes, not a photo")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "named.jpg").write_text("an image's name does not make an image")
    got = listed(tmp_path)
    assert got["noext"] is None and got["really-a-png.txt"] is None
    assert "no known image format" in str(got["readme"])
    assert "empty" in str(got["empty"])
    assert got["named.jpg"] is None  # read, then recorded as a failure by the decoder


def test_an_unlistable_directory_is_recorded(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root lists any directory")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.jpg").write_bytes(JPEG)
    (tmp_path / "locked").chmod(0)
    try:
        assert "cannot list" in str(listed(tmp_path)["locked/"])
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_the_byte_limit_is_checked_before_reading(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(JPEG)
    with pytest.raises(ImageTooLarge, match="over the 100-byte limit"):
        FolderSource(str(tmp_path), max_bytes=100).read(SourceItem("big.jpg"))
