"""Archive sources: traversal, links and bombs are refused; honest archives read in place."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from faceindex.config import Settings
from faceindex.errors import ImageTooLarge, InputError, SourceRefused
from faceindex.sources.archive import ArchiveSource, scan_archive
from faceindex.sources.factory import source_kind

pytestmark = pytest.mark.unit

JPEG = b"\xff\xd8\xff" + b"x" * 300


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info in members:
            data = b"" if info.type != tarfile.REGTYPE else JPEG[: info.size]
            tf.addfile(info, io.BytesIO(data) if data else None)
    return path


def reg(name: str, size: int = len(JPEG)) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(tmp_path / "home", workers=1)


def test_zip_members_are_listed_and_read_in_place(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"b/2.jpg": JPEG, "a/1.png": JPEG, "notes.txt": b"hi"})
    src = ArchiveSource(str(path))
    items = [i for i in src.items() if i.skip is None]
    assert [i.locator for i in items] == ["a/1.png", "b/2.jpg"]
    assert src.read(items[1]) == JPEG
    assert not (tmp_path / "a").exists()  # nothing extracted


def test_members_without_an_image_name_are_sniffed_or_listed_as_skipped(tmp_path: Path) -> None:
    # Before: "noext" (a real JPEG) and "notes.txt" were dropped without a word.
    path = make_zip(
        tmp_path / "a.zip", {"noext": JPEG, "notes.txt": b"hi there", "empty": b"", "1.jpg": JPEG}
    )
    got = {i.locator: i.skip for i in ArchiveSource(str(path)).items()}
    assert set(got) == {"1.jpg", "empty", "noext", "notes.txt"}
    assert got["noext"] is None and got["1.jpg"] is None
    assert "no known image format" in str(got["notes.txt"])
    assert "empty" in str(got["empty"])
    src = ArchiveSource(str(path))
    assert src.read(next(i for i in src.items() if i.locator == "noext")) == JPEG


def test_a_non_utf8_tar_member_name_is_listed_printably_and_read(tmp_path: Path) -> None:
    # Before: the surrogate-escaped name reached SQLite and every ingest died on it.
    name = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")
    path = tmp_path / "latin1.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(JPEG)
        tf.addfile(info, io.BytesIO(JPEG))
    src = ArchiveSource(str(path))
    (item,) = list(src.items())
    assert item.locator == "caf\\xe9.jpg"
    item.locator.encode("utf-8")  # valid UTF-8: the catalog and a terminal accept it
    assert src.read(item) == JPEG


def test_a_zip_whose_utf8_flagged_name_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bad.zip", {"caf\u00e9.jpg": JPEG})
    raw = path.read_bytes().replace("caf\u00e9".encode(), b"caf\xff\xfe")
    path.write_bytes(raw)
    with pytest.raises(SourceRefused, match="not valid UTF-8"):
        list(ArchiveSource(str(path)).items())


def test_the_zip_is_opened_once_per_process_not_once_per_member(tmp_path: Path) -> None:
    from faceindex.sources import archive

    path = make_zip(tmp_path / "many.zip", {f"{i:04d}.jpg": JPEG for i in range(300)})
    src = ArchiveSource(str(path))
    archive._open_archive.cache_clear()
    assert all(src.read(item) == JPEG for item in src.items())
    info = archive._open_archive.cache_info()
    assert (info.misses, info.hits) == (1, 299)
    path.write_bytes(make_zip(tmp_path / "other.zip", {"0000.jpg": JPEG[:-1]}).read_bytes())
    assert src.read(next(iter(src.items()))) == JPEG[:-1]  # replaced in place: reopened


@pytest.mark.parametrize("mode,suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:xz", ".txz")])
def test_tar_archives_compressed_or_not(tmp_path: Path, mode: str, suffix: str) -> None:
    path = make_tar(tmp_path / f"a{suffix}", [reg("x/1.jpg"), reg("x/2.jpg")], mode)
    src = ArchiveSource(str(path))
    assert [src.read(i) for i in src.items()] == [JPEG, JPEG]


@pytest.mark.parametrize(
    "name", ["../evil.jpg", "a/../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg", "a\\..\\e.jpg"]
)
def test_zip_traversal_is_refused(tmp_path: Path, settings: Settings, name: str) -> None:
    path = make_zip(tmp_path / "bad.zip", {"ok.jpg": JPEG, name: JPEG})
    with pytest.raises(SourceRefused, match="refused"):
        list(ArchiveSource(str(path)).items())
    with pytest.raises(SourceRefused):
        source_kind(path, settings)  # registration refuses it up front


@pytest.mark.parametrize(
    "member",
    [
        reg("../../evil.jpg"),
        reg("/abs/evil.jpg"),
        link("pics/passwd.jpg", "/etc/passwd"),
        link("pics/up.jpg", "../../outside.jpg"),
        link("pics/hard.jpg", "/etc/shadow", tarfile.LNKTYPE),
        link("dev.jpg", "", tarfile.CHRTYPE),
    ],
)
def test_tar_traversal_and_links_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    path = make_tar(tmp_path / "bad.tar", [reg("ok.jpg"), member])
    with pytest.raises(SourceRefused):
        list(ArchiveSource(str(path)).items())


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("pic.jpg")
        info.external_attr = (0o120777 << 16) | 0
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SourceRefused, match="link"):
        list(ArchiveSource(str(path)).items())


def test_size_limits(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {f"{i}.jpg": JPEG for i in range(5)})
    with pytest.raises(SourceRefused, match="members"):
        scan_archive(path, max_members=4, max_total=10**9)
    with pytest.raises(SourceRefused, match="uncompressed"):
        scan_archive(path, max_members=10, max_total=len(JPEG) * 3)
    # A member over the per-file limit is listed (before: dropped without a record) and its
    # read is refused by its declared size, so ingest records it as a failure.
    src = ArchiveSource(str(path), max_bytes=100)
    items = list(src.items())
    assert [i.locator for i in items] == [f"{i}.jpg" for i in range(5)]
    with pytest.raises(ImageTooLarge, match="over the 100-byte limit"):
        src.read(items[0])


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.jpg", b"\0" * (8 * 1024 * 1024))
    assert path.stat().st_size < 100_000
    with pytest.raises(SourceRefused, match="uncompressed"):
        scan_archive(path, max_members=10, max_total=1024 * 1024)


def test_source_kind_tells_folders_archives_and_lists_apart(
    tmp_path: Path, settings: Settings
) -> None:
    assert source_kind(tmp_path, settings) == "folder"
    assert source_kind(make_zip(tmp_path / "a.zip", {"1.jpg": JPEG}), settings) == "archive"
    listing = tmp_path / "urls.txt"
    listing.write_text("https://example.org/1.jpg\n")
    assert source_kind(listing, settings) == "urls"
    listing.write_text("https://example.org/1.jpg\nhttps://cdn.instagram.com/2.jpg\n")
    with pytest.raises(SourceRefused, match="deny-list"):
        source_kind(listing, settings)
    (tmp_path / "x.bin").write_bytes(b"??")
    with pytest.raises(InputError):
        source_kind(tmp_path / "x.bin", settings)
