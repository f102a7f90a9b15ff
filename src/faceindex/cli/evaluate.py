"""faceindex eval folder|pairs|open-set: accuracy of the configured models on labeled photos,
and the calibration (``--calibrate``) a home can be pointed at (``calibration_path``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, err_console, handle_errors, settings_for

__all__ = ["app"]

app = typer.Typer(help="Measure accuracy on a labeled collection (nothing is indexed).")

DetectorOpt = typer.Option(None, "--detector", help="hog, cnn or whole (pre-cropped faces)")
MirrorOpt = typer.Option(None, "--mirror/--no-mirror", help="mirror-averaged descriptors")
FallbackOpt = typer.Option(None, "--fallback/--no-fallback", help="detection fallback chain")
CalibrateOpt = typer.Option(
    None, "--calibrate", help="write the model's calibration measured on these pairs to FILE"
)


def _faces(paths: list[Path], settings: Any, quiet: bool) -> dict[Path, Any]:
    """Every face of every file with the chosen models (a progress bar unless quiet)."""
    from faceindex.evaluation.embedding import embed_faces

    with Progress(console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("embedding", total=len(paths))
        return embed_faces(
            paths, settings, progress=lambda done, total: bar.update(task, completed=done)
        )


def _vectors(
    paths: list[Path], home: Path | None, quiet: bool, **overrides: Any
) -> tuple[dict[Path, Any], Any]:
    """Descriptors of the largest face of every file with the chosen models, and settings."""
    from faceindex.evaluation.embedding import largest

    settings = settings_for(home, **overrides)
    faces = _faces(paths, settings, quiet)
    return {p: (f.vector if (f := largest(fs)) else None) for p, fs in faces.items()}, settings


def _match_threshold(settings: Any) -> float:
    """The distance eval reports verification at: the setting, else the model pack's."""
    from faceindex.vision.factory import settings_pack
    from faceindex.vision.pack import thresholds_for

    return thresholds_for(settings_pack(settings), match=settings.match_threshold).match


def _calibrate(out: Path, pairs: Any, vectors: dict[Path, Any], settings: Any, what: str) -> None:
    from faceindex.evaluation.report import pair_distances
    from faceindex.vision.calibration import fit_calibration
    from faceindex.vision.factory import model_tag, settings_pack

    d, same = pair_distances(pairs, vectors)
    people = {p.parent.name for p in (*pairs.left, *pairs.right)}
    cal = fit_calibration(
        d[~same],
        d[same],
        model=model_tag(settings, settings_pack(settings)),
        measured_on=what,
        identities=len(people),
    )
    cal.save(out)
    err_console.print(
        f"calibration of {cal.model} written to {out} ({cal.impostor_pairs} impostor, "
        f"{cal.genuine_pairs} genuine pairs); point a home at it with calibration_path"
    )


def _show(report: Any, as_json: bool) -> None:
    data = report.as_dict()
    if as_json:
        console.print_json(json.dumps(data))
        return
    v, b = data["verification"], data["best"]
    table = Table(
        title=f"{data['name']}: {data['images']} images, {data['no_face']} without a face"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("pairs (genuine / impostor)", f"{v['pairs']} ({v['genuine']} / {v['impostor']})")
    for label, m in (
        (f"at default threshold {v['threshold']:.2f}", v),
        (f"at best threshold {b['threshold']:.3f}", b),
    ):
        table.add_row(f"accuracy {label}", f"{m['accuracy']:.4f}")
        table.add_row(f"balanced accuracy {label}", f"{m['balanced_accuracy']:.4f}")
        table.add_row(f"TAR / FAR {label}", f"{m['tar']:.4f} / {m['far']:.4f}")
    if data["kfold"]:
        k = data["kfold"]
        table.add_row(f"{k['folds']}-fold accuracy", f"{k['accuracy']:.4f} ± {k['std']:.4f}")
    for r in data["roc"]:
        table.add_row(f"TAR at FAR {r['far']:g}", f"{r['tar']:.4f} (t={r['threshold']:.3f})")
    if data["rank1"] is not None:
        table.add_row(
            f"rank-1 ({data['rank1_probes']} probes, 1 enrolled/person)", f"{data['rank1']:.4f}"
        )
    console.print(table)
    console.print(
        "FPIR / FNIR / wrong: of the match band (strangers called a match; enrolled people not "
        "found as a match; enrolled people matched to someone else). The last column: a "
        "raw-distance threshold at that FPIR ('-': too few non-mated probes to tell)."
    )


@app.command("folder")
@handle_errors
def folder(
    root: Path = typer.Argument(..., help="root/<person>/<images>"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str | None = DetectorOpt,
    mirror: bool | None = MirrorOpt,
    fallback: bool | None = FallbackOpt,
    calibrate: Path | None = CalibrateOpt,
    home: HomeOpt = None,
) -> None:
    """Verification over every pair, ROC points, and rank-1 identification."""
    from faceindex.evaluation.datasets import folder_pairs, people
    from faceindex.evaluation.report import evaluate_folder, files_of

    vectors, settings = _vectors(
        files_of(root), home, as_json, detector=detector, mirror=mirror, detect_fallback=fallback
    )
    _show(evaluate_folder(root, vectors, _match_threshold(settings)), as_json)
    if calibrate is not None:
        _calibrate(calibrate, folder_pairs(people(root)), vectors, settings, f"folder {root}")


@app.command("pairs")
@handle_errors
def pairs(
    pairs_file: Path = typer.Argument(..., help="LFW pairs.txt, or CSV file_x,file_y,decision"),
    root: Path = typer.Option(..., "--root", help="where the images are"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str | None = DetectorOpt,
    mirror: bool | None = MirrorOpt,
    fallback: bool | None = FallbackOpt,
    calibrate: Path | None = CalibrateOpt,
    home: HomeOpt = None,
) -> None:
    """Verification on a pairs file (10-fold accuracy when the file defines folds)."""
    from faceindex.evaluation.datasets import load_pairs
    from faceindex.evaluation.report import evaluate_pairs, pair_files

    vectors, settings = _vectors(
        pair_files(pairs_file, root),
        home,
        as_json,
        detector=detector,
        mirror=mirror,
        detect_fallback=fallback,
    )
    _show(evaluate_pairs(pairs_file, root, vectors, _match_threshold(settings)), as_json)
    if calibrate is not None:
        what = f"pairs file {pairs_file}"
        _calibrate(calibrate, load_pairs(pairs_file, root), vectors, settings, what)


@app.command("open-set")
@handle_errors
def open_set(
    root: Path = typer.Argument(..., help="root/<person>/<images>: first photo enrolled"),
    distractors: list[Path] = typer.Option(
        [], "--distractors", help="folders whose every face joins the gallery (repeatable)"
    ),
    nonmated: int = typer.Option(
        0, "--nonmated", min=0, help="people of ROOT held out of the gallery (non-mated probes)"
    ),
    steps: int = typer.Option(4, "--steps", min=1, max=20, help="gallery sizes: distractors/N"),
    match_bound: float | None = typer.Option(None, "--match-bound", help="default: setting"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str | None = DetectorOpt,
    mirror: bool | None = MirrorOpt,
    fallback: bool | None = FallbackOpt,
    home: HomeOpt = None,
) -> None:
    """Open-set (1:N) identification at growing gallery sizes: rank-1/10, FPIR and FNIR of
    the match band, FNIR at FPIR 0.1/0.01/0.001 of a raw-distance threshold."""
    import numpy as np

    from faceindex.engine import build_calibration
    from faceindex.errors import InputError
    from faceindex.evaluation.datasets import people
    from faceindex.evaluation.embedding import largest
    from faceindex.evaluation.openset import Probe, build_open_set, evaluate_open_set, size_steps
    from faceindex.search.scoring import Decider
    from faceindex.sources.base import IMAGE_SUFFIXES
    from faceindex.vision.factory import settings_pack

    settings = settings_for(home, detector=detector, mirror=mirror, detect_fallback=fallback)
    groups = people(root)
    if nonmated >= len(groups):
        raise InputError(f"--nonmated {nonmated} leaves nobody of {len(groups)} enrolled")
    extra = []
    for folder in distractors:
        if not folder.is_dir():
            raise InputError(f"distractor folder {folder} is not a folder")
        extra += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    faces = _faces([p for ps in groups.values() for p in ps] + extra, settings, as_json)
    probes = {
        name: [Probe(name, f.quality, f.vector) for p in ps if (f := largest(faces[p]))]
        for name, ps in groups.items()
    }
    rng = np.random.default_rng(seed)
    held = set(rng.choice(sorted(probes), size=nonmated, replace=False)) if nonmated else set()
    dis = [Probe("", f.quality, f.vector) for p in extra for f in faces[p]]
    gallery, mated, strangers = build_open_set(probes, dis, held)
    cal = build_calibration(settings, settings_pack(settings))
    bound = settings.match_bound if match_bound is None else match_bound
    decider = Decider(
        cal, bound, settings.possible_strangers, settings.possible_fmr, settings.match_quality
    )
    sizes = size_steps(len(gallery.distractors), steps)
    reports = evaluate_open_set(gallery, mated, strangers, decider, sizes=sizes, seed=seed)
    if as_json:
        from dataclasses import asdict

        body = {
            "calibration": cal.measured_on,
            "match_bound": bound,
            "sizes": [asdict(r) for r in reports],
        }
        console.print_json(json.dumps(body, default=float))
        return
    table = Table(title=f"open set {root.name}: match below a {bound:g} chance of a stranger")
    columns = ["faces", "mated", "non-mated", "rank-1", "rank-10", "FPIR", "FNIR",
               "wrong", "FNIR@FPIR .1/.01/.001"]  # fmt: skip
    for col in columns:
        table.add_column(col, justify="right")
    for r in reports:
        at = r.fnir_at_fpir.get("distance", {})
        fnirs = " / ".join("-" if v is None else f"{v:.3f}" for v in at.values())
        table.add_row(
            str(r.gallery), str(r.mated), str(r.nonmated), f"{r.rank1:.3f}", f"{r.rank10:.3f}",
            f"{r.match_fpir:.3f}", f"{r.match_fnir:.3f}", f"{r.wrong_person_matches:.3f}",
            fnirs or "-",
        )  # fmt: skip
    console.print(table)
    console.print(
        "FPIR / FNIR / wrong: of the match band (strangers called a match; enrolled people not "
        "found as a match; enrolled people matched to someone else). The last column: a "
        "raw-distance threshold at that FPIR ('-': too few non-mated probes to tell)."
    )
