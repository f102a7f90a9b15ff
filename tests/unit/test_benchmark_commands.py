"""The benchmarks run from a fresh clone with the commands docs/BENCHMARKS.md gives: the
scripts and flags it names exist, the peers' install keeps what face_recognition_models
needs, faceindex itself needs none of it, and the coarse benchmark works at any size."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "BENCHMARKS.md"


def documented_commands() -> list[list[str]]:
    """Every command in the doc's shell blocks, continuation lines joined, comments cut."""
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def script_flags(script: Path) -> set[str]:
    return set(re.findall(r"""add_argument\(\s*["'](--[a-z0-9-]+)["']""", script.read_text()))


def test_every_documented_benchmark_script_takes_the_flags_the_doc_gives() -> None:
    scripts = [c for c in documented_commands() if any(w.startswith("benchmarks/") for w in c)]
    assert len(scripts) >= 8
    for words in scripts:
        script = ROOT / next(w for w in words if w.startswith("benchmarks/"))
        assert script.is_file(), words
        flags = {w.split("=")[0] for w in words if w.startswith("--")}
        assert flags <= script_flags(script), (words, flags - script_flags(script))


def test_documented_eval_commands_take_their_flags() -> None:
    evals = [c for c in documented_commands() if "eval" in c]
    assert len(evals) >= 4
    for words in evals:
        mode = words[words.index("eval") + 1]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
        help_text = subprocess.run(
            [sys.executable, "-m", "faceindex", "eval", mode, "--help"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag in (w for w in words if w.startswith("--")):
            assert flag in help_text, (words, flag)


def test_bench_deps_keeps_pkg_resources_for_face_recognition_models() -> None:
    """face_recognition_models 0.3.0 imports pkg_resources (gone from setuptools 81), so
    every venv the Makefile installs it or face_recognition into must keep setuptools<81."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^bench-deps:.*?\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert recipe is not None
    lines = recipe.group(1).splitlines()
    peers = {
        line.split()[0]
        for line in lines
        if "pip install" in line and re.search(r"face_recognition(_models)?==", line)
    }
    assert peers == {"$(BIN)/pip", ".venv-peer/bin/pip"}
    for pip in peers:
        assert any(line.split()[0] == pip and "'setuptools<81'" in line for line in lines), pip
    assert "bench-ingest: bench-deps" in makefile and "$(BENCH_ARGS)" in makefile


def test_faceindex_loads_its_models_without_pkg_resources(tmp_path: Path) -> None:
    """faceindex finds the weights by path: it never imports face_recognition_models (whose
    import needs pkg_resources), so a setuptools without pkg_resources is fine for it."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pkg_resources':\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from faceindex.config import Settings\n"
        "from faceindex.engine import build_analyzer\n"
        "from faceindex.vision.models import DLIB_CNN, DLIB_LANDMARKS_5, DLIB_RESNET, model_path\n"
        "for spec in (DLIB_RESNET, DLIB_LANDMARKS_5, DLIB_CNN):\n"
        "    assert model_path(spec).is_file()\n"
        f"build_analyzer(Settings.load({str(tmp_path / 'home')!r}))\n"
        "assert 'face_recognition_models' not in sys.modules\n"
        "import pkg_resources  # the block works: this must fail\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().endswith("ImportError: pkg_resources is blocked"), out.stderr


def test_a_nested_quantizer_can_be_asked_for_at_any_size() -> None:
    """benchmarks/coarse.py compares flat and nested placement at one nlist, also below
    FLAT_MAX_LISTS (its documented --recall-nlist 4096, and every quick run)."""
    from faceindex.index import faiss_coarse

    faiss = pytest.importorskip("faiss")
    nlist, dim = 64, 16
    assert not faiss_coarse.is_nested(faiss_coarse.new_quantizer(dim, "l2", nlist))
    quantizer = faiss_coarse.new_quantizer(dim, "l2", nlist, nested=True)
    assert faiss_coarse.is_nested(quantizer)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist)
    sample = np.random.default_rng(0).standard_normal((30 * nlist, dim)).astype(np.float32)
    faiss_coarse.train_nested(index, sample)
    index.train(sample)
    index.add(sample)
    assert index.ntotal == len(sample) and index.quantizer.ntotal == nlist
