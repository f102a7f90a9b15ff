"""Labeled collections: folder-per-person trees, LFW-format pairs.txt, and CSV pair lists."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from faceindex.errors import InputError
from faceindex.sources.base import IMAGE_SUFFIXES

__all__ = ["PairSet", "folder_pairs", "load_pairs", "people"]


@dataclass(frozen=True)
class PairSet:
    left: list[Path]
    right: list[Path]
    same: list[bool]
    folds: list[int]  # fold of each pair (all 0 when the file defines none)


def people(root: Path) -> dict[str, list[Path]]:
    """Folder-per-person layout: root/<person>/<image>; people with no images are left out."""
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    out = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(f for f in person.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            out[person.name] = images
    if not out:
        raise InputError(f"{root} has no person folders with images")
    return out


def folder_pairs(groups: dict[str, list[Path]]) -> PairSet:
    """Every genuine pair and every impostor pair of a folder-per-person collection."""
    items = [(name, path) for name, paths in groups.items() for path in paths]
    left, right, same = [], [], []
    for (na, pa), (nb, pb) in combinations(items, 2):
        left.append(pa)
        right.append(pb)
        same.append(na == nb)
    return PairSet(left, right, same, [0] * len(same))


def load_pairs(pairs_file: Path, root: Path) -> PairSet:
    """LFW ``pairs.txt`` (header 'folds n', then 'name i j' or 'name1 i name2 j' lines,
    images at root/name/name_%04d.jpg) or a CSV with file_x, file_y and a Yes/No column."""
    text = pairs_file.read_text()
    if pairs_file.suffix.lower() == ".csv":
        return _csv_pairs(text, root)
    return _lfw_pairs(text, root)


def _lfw_pairs(text: str, root: Path) -> PairSet:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("empty pairs file")
    header, rows = lines[0], lines[1:]
    per_fold = len(rows)
    if len(header) == 2 and all(x.isdigit() for x in header):
        n_folds, n = int(header[0]), int(header[1])
        per_fold = 2 * n if n_folds * 2 * n == len(rows) else len(rows)
    else:
        rows = lines

    def img(name: str, num: str) -> Path:
        return root / name / f"{name}_{int(num):04d}.jpg"

    left, right, same, folds = [], [], [], []
    for k, row in enumerate(rows):
        if len(row) == 3:
            left.append(img(row[0], row[1]))
            right.append(img(row[0], row[2]))
            same.append(True)
        elif len(row) == 4:
            left.append(img(row[0], row[1]))
            right.append(img(row[2], row[3]))
            same.append(False)
        else:
            raise InputError(f"pairs line {k + 2}: expected 3 or 4 fields, got {len(row)}")
        folds.append(k // per_fold)
    return PairSet(left, right, same, folds)


def _csv_pairs(text: str, root: Path) -> PairSet:
    reader = csv.DictReader(text.splitlines())
    fields = {f.lower(): f for f in reader.fieldnames or []}
    decision = fields.get("decision")
    if "file_x" not in fields or "file_y" not in fields or decision is None:
        raise InputError("a CSV pairs file needs file_x, file_y and decision columns")
    left, right, same = [], [], []
    for row in reader:
        left.append(root / Path(row[fields["file_x"]]).name)
        right.append(root / Path(row[fields["file_y"]]).name)
        same.append(row[decision].strip().lower() in ("yes", "true", "1", "same"))
    return PairSet(left, right, same, [0] * len(same))
