"""Random SIGKILLs of real CLI processes (ingest, erase image, erase source, index build,
index compact), some at random moments, some at the erasure's own points through the test
hook FACEINDEX_TEST_KILL_AT; at least 50 kills, and after each the home is opened the way
any next command opens it (index reconciled, interrupted erasures finished) and checked:

* the index holds exactly the catalog's live faces;
* no image is held twice (same bytes) and no face twice (same image, same box);
* an erasure whose process died has a receipt exactly when its data is gone, a rerun
  returns that receipt, no intent is left pending, and every receipt verifies;
* erased content never comes back: no held tombstone's bytes are in the catalog, though
  the loop keeps re-ingesting folders that hold them, under new source names too.

Run: ``pytest -m slow tests/integration/test_kill_loop.py`` (4 to 7 minutes on 2 busy cores;
``FACEINDEX_KILL_LOOP_SEED`` picks another sequence).
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.faults import POINTS
from faceindex.governance.service import Governance

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 50
BUDGET_S = 540.0
SEED = int(os.environ.get("FACEINDEX_KILL_LOOP_SEED", "9"))


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "FACEINDEX_HOME": str(home), "FACEINDEX_BATCH_SIZE": "2", **extra}


def _cli(home: Path, args: list[str], extra: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "faceindex", *args],
        env=_env(home, extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _run(home: Path, *args: str) -> None:
    proc = _cli(home, list(args), {"FACEINDEX_WORKERS": "1"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


@dataclass
class World:
    home: Path
    rng: random.Random
    folders: list[Path] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)
    took: dict[str, float] = field(default_factory=dict)  # op -> seconds, uninterrupted
    variant: int = 0
    kills: int = 0
    tally: dict[str, int] = field(default_factory=dict)  # what was killed, and where

    def new_folder(self, astronaut: np.ndarray, n: int = 3) -> Path:
        folder = self.home.parent / f"photos{len(self.folders)}"
        folder.mkdir()
        img = Image.fromarray(astronaut)
        for i in range(n):
            v = self.variant
            self.variant += 1
            side = 240 + 3 * (v % 30)
            pic = img.resize((side, side))
            if (v // 30) % 2:
                pic = pic.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            buf = io.BytesIO()
            pic.save(buf, format="JPEG", quality=80 + (v // 60) % 15)
            (folder / f"p{i}.jpg").write_bytes(buf.getvalue())
        self.folders.append(folder)
        return folder

    def add_source(self, folder: Path) -> str:
        name = f"s{len(self.sources)}"
        _run(
            self.home, "sources", "add", name, "--path", str(folder), "--owner", "o",
            "--legal-basis", "consent", "--retention-days", "30",
        )  # fmt: skip
        self.sources[name] = folder
        return name


def _live(world: World) -> tuple[list[int], list[str]]:
    """(image ids, registered source names) as the catalog holds them now."""
    with Engine.open(Settings.load(world.home, workers=1)) as eng:
        images = sorted(
            {f.image_id for f in eng.catalog.faces(eng.catalog.live_face_ids().tolist()).values()}
        )
        return images, [s.name for s in eng.catalog.list_sources()]


OPS = ("ingest", "erase-image", "erase-source", "index-build", "index-compact")
WEIGHTS = (3, 3, 2, 1, 1)


def _pick(world: World, astronaut: np.ndarray) -> tuple[str, list[str], dict[str, str]]:
    rng = world.rng
    op = rng.choices(OPS, WEIGHTS)[0]
    images, sources = _live(world)
    if op.startswith("erase") and len(images) < 2:
        _run(world.home, "ingest", world.add_source(world.new_folder(astronaut)))  # refill
        images, sources = _live(world)
    hook: dict[str, str] = {}
    if rng.random() < 0.4:
        hook = {"FACEINDEX_TEST_KILL_AT": rng.choice(POINTS)}
    if op == "ingest":
        if not sources or rng.random() < 0.5:
            # A new source: a fresh folder, or one whose bytes may have been erased.
            folder = (
                world.new_folder(astronaut) if rng.random() < 0.5 else rng.choice(world.folders)
            )
            sources.append(world.add_source(folder))
        workers = rng.choice(["1", "2"])
        return op, ["ingest", rng.choice(sources)], {"FACEINDEX_WORKERS": workers}
    if op == "erase-image":
        return op, ["erase", "image", str(rng.choice(images))], hook
    if op == "erase-source":
        return op, ["erase", "source", rng.choice(sources)], hook
    return op, op.split("-"), {}


def _attempt(world: World, op: str, args: list[str], extra: dict[str, str]) -> tuple[bool, float]:
    """Run one command and SIGKILL it at a random moment of its usual run (or let the test
    hook kill it); returns (killed, seconds)."""
    started = time.monotonic()
    proc = _cli(world.home, args, {"FACEINDEX_WORKERS": "1", **extra})
    hooked = "FACEINDEX_TEST_KILL_AT" in extra
    usual = world.took.get(op)
    if not hooked and usual is not None:  # the first run of each command is timed, not killed
        try:
            proc.wait(timeout=world.rng.uniform(0.3, 1.0) * usual)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes
    _, err = proc.communicate(timeout=300)
    seconds = time.monotonic() - started
    if proc.returncode == -signal.SIGKILL:
        return True, seconds
    if proc.returncode != 0 and hooked:  # e.g. the image was erased already, nothing to do
        assert b"Traceback" not in err, err.decode()[-2000:]
    else:
        assert proc.returncode == 0, f"{args}: {err.decode()[-2000:]}"
    if not hooked:
        world.took[op] = max(seconds, world.took.get(op, 0.0))
    return False, seconds


def _check(world: World, op: str, args: list[str]) -> None:
    """Open the home as the next command would, then check every invariant."""
    with (
        Engine.open(Settings.load(world.home, workers=1)) as eng,
        Governance.open(eng) as gov,
    ):
        cat = eng.catalog
        live = np.sort(cat.live_face_ids())
        assert np.array_equal(np.sort(eng.index.ids()), live), f"index != catalog after {op}"
        rows = cat.faces(live.tolist())
        boxes = [(f.image_id, f.bbox) for f in rows.values()]
        assert len(boxes) == len(set(boxes)), f"a face is held twice after {op}"
        shas = {f.image_id: f.image_sha256 for f in rows.values()}
        assert len(set(shas.values())) == len(shas), f"an image is held twice after {op}"
        assert gov.store.pending_intents() == [], "an interrupted erasure was not finished"
        receipts = gov.receipts()
        if op == "erase-image":
            image = int(args[-1])
            gone = not cat.existing_images([image])
            mine = [r for r in receipts if r.kind == "image" and r.target == str(image)]
            assert bool(mine) == gone, f"image {image}: gone={gone}, receipts={mine}"
        if op == "erase-source":
            name = args[-1]
            gone = name not in {s.name for s in cat.list_sources()}
            mine = [r for r in receipts if r.kind == "source" and r.target == name]
            assert bool(mine) == gone, f"source {name}: gone={gone}, receipts={mine}"
            if gone:
                assert gov.erase_source(name).id == mine[-1].id  # the rerun: its receipt
        for receipt in receipts:
            check = gov.verify_receipt(receipt.id)
            assert check.ok, (receipt, check.problems)
        tombs = {t.sha256 for t in gov.tombstones()}
        assert not tombs & set(cat.images_holding(tombs)), "erased content came back"
        assert gov.verify_audit().ok


def test_random_sigkills_lose_nothing_and_never_bring_erased_content_back(
    tmp_path: Path, astronaut: np.ndarray, record_property: Callable[[str, object], None]
) -> None:
    world = World(tmp_path / "home", random.Random(SEED))
    _run(world.home, "init")
    _run(world.home, "ingest", world.add_source(world.new_folder(astronaut, 4)))
    started = time.monotonic()
    rounds = 0
    while world.kills < KILLS:
        assert time.monotonic() - started < BUDGET_S, f"only {world.kills} kills in the budget"
        op, args, extra = _pick(world, astronaut)
        killed, _ = _attempt(world, op, args, extra)
        if killed:
            world.kills += 1
            where = f"{op}@{extra.get('FACEINDEX_TEST_KILL_AT', 'random')}"
            world.tally[where] = world.tally.get(where, 0) + 1
        rounds += 1
        _check(world, op, args)
    record_property("kill_loop", {"rounds": rounds, "seconds": time.monotonic() - started,
                                  **world.tally})  # fmt: skip
    # The loop reached what it is for: every command killed, the erasure at each of its
    # points, receipts finished by a later open, erased bytes met again by an ingest.
    ops = {w.split("@")[0] for w in world.tally}
    assert ops == {"ingest", "erase-image", "erase-source", "index-build", "index-compact"}
    assert {w.split("@")[1] for w in world.tally} >= set(POINTS), world.tally
    with (
        Engine.open(Settings.load(world.home, workers=1)) as eng,
        Governance.open(eng) as gov,
    ):
        assert any(r.recovered for r in gov.receipts())
        ends = [e.event.details for e in gov.audit.entries() if e.event.action == "ingest"]
        assert any(d.get("images_erased_before") for d in ends), "no ingest met erased bytes"
