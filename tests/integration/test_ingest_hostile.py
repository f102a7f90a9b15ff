"""Ingest of the hostile corpus (tests/hostile.py) with the real models: every entry is a
row, a recorded failure or a recorded skip with its reason; ingest exits 7, with no
traceback; the archives holding the same files behave the same."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from faceindex.config import Settings
from faceindex.engine import Engine
from tests.hostile import Manifest, build_folder, build_tar, build_zip

pytestmark = pytest.mark.integration

MAX_BYTES = 2_000_000  # small, so that an archive can hold a member over it cheaply


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEINDEX_HOME": str(home), "FACEINDEX_WORKERS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "faceindex", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def rows(home: Path) -> dict[str, tuple[str, str | None]]:
    db = sqlite3.connect(f"file:{home / 'catalog.db'}?mode=ro", uri=True)
    try:
        got = db.execute("SELECT locator, status, reason FROM items").fetchall()
    finally:
        db.close()
    return {loc: (status, reason) for loc, status, reason in got}


def check(manifest: Manifest, got: dict[str, tuple[str, str | None]]) -> None:
    assert set(got) == set(manifest), "every entry, and nothing else, has a row"
    wrong = {
        loc: (want, got[loc])
        for loc, want in manifest.items()
        if want != "any" and got[loc][0] != want or want == "any" and got[loc][0] == "skipped"
    }
    assert not wrong
    unexplained = [loc for loc, (status, reason) in got.items() if status != "ok" and not reason]
    assert not unexplained


def test_the_hostile_folder_is_ingested_entry_by_entry(tmp_path: Path) -> None:
    manifest = build_folder(tmp_path / "corpus")
    home = tmp_path / "home"
    assert cli(home, "init").returncode == 0
    added = cli(
        home, "sources", "add", "hostile", "--path", str(tmp_path / "corpus"), "--owner", "qa",
        "--legal-basis", "consent", "--retention-days", "30",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    run = cli(home, "ingest", "hostile", "--json")
    assert run.returncode == 7, run.stderr  # some items failed: their own exit code
    assert "Traceback" not in run.stderr + run.stdout
    summary = json.loads(run.stdout)
    got = rows(home)
    check(manifest, got)
    assert got["special/pipe.jpg"][1] == "a FIFO, not a file"
    assert "loop" in str(got["special/loop-a.jpg"][1])
    assert "ImageTooLarge" in str(got["bombs/declared-30000.png"][1])
    assert got["names/photo-without-extension"][0] == "ok"  # sniffed, not judged by name
    assert got["names/latin1-caf\\xe9.jpg"][0] == "ok"
    assert got["names/dir-\\xe9\\xff/inside.jpg"][0] == "ok"  # a non-UTF-8 directory too
    assert {s["item"] for s in summary["skipped"]} == {
        loc for loc, (status, _) in got.items() if status == "skipped"
    }
    assert {f["item"] for f in summary["failed"]} == {
        loc for loc, (status, _) in got.items() if status == "failed"
    }
    listing = cli(home, "failures", "--skipped")
    assert listing.returncode == 0 and "FIFO" in listing.stdout
    stats = json.loads(cli(home, "stats", "--json").stdout)
    assert stats["skipped"] == len(summary["skipped"])
    assert stats["failed"] == len(summary["failed"])
    again = cli(home, "ingest", "hostile", "--json")  # nothing new: every entry is held
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["images_skipped"] == len(manifest)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_the_hostile_archives_are_ingested_entry_by_entry(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"corpus.{'tar.gz' if kind == 'tar' else 'zip'}"
    build = build_tar if kind == "tar" else build_zip
    manifest = build(path, max_bytes=MAX_BYTES)
    settings = Settings.load(tmp_path / "home", workers=1, max_bytes=MAX_BYTES)
    with Engine.open(settings, create=True) as engine:
        engine.add_source(
            "hostile", path=str(path), owner="qa", legal_basis="consent", retention_days=30
        )
        summary = engine.ingest("hostile", in_process=True)
    got = rows(tmp_path / "home")
    check(manifest, got)
    assert "over the 2000000-byte limit" in str(got["big/over-the-limit.jpg"][1])
    assert summary.images_seen == len(manifest)
