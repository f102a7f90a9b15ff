"""faceindex eval folder|pairs: accuracy of the configured models on a labeled collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table

from faceindex.cli.common import HomeOpt, console, handle_errors, settings_for

__all__ = ["app"]

app = typer.Typer(help="Measure accuracy on a labeled collection (nothing is indexed).")

DetectorOpt = typer.Option(None, "--detector", help="hog, cnn or whole (pre-cropped faces)")
MirrorOpt = typer.Option(None, "--mirror/--no-mirror", help="mirror-averaged descriptors")
FallbackOpt = typer.Option(None, "--fallback/--no-fallback", help="detection fallback chain")


def _vectors(
    paths: list[Path], home: Path | None, quiet: bool, **overrides: Any
) -> tuple[dict[Path, Any], float]:
    """Descriptors of every file with the chosen models, and the match threshold."""
    from faceindex.evaluation.embedding import embed_files

    settings = settings_for(home, **overrides)
    with Progress(console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("embedding", total=len(paths))
        vectors = embed_files(
            paths, settings, progress=lambda done, total: bar.update(task, completed=done)
        )
    from faceindex.vision.factory import settings_pack
    from faceindex.vision.pack import thresholds_for

    return vectors, thresholds_for(settings_pack(settings), match=settings.match_threshold).match


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


@app.command("folder")
@handle_errors
def folder(
    root: Path = typer.Argument(..., help="root/<person>/<images>"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str | None = DetectorOpt,
    mirror: bool | None = MirrorOpt,
    fallback: bool | None = FallbackOpt,
    home: HomeOpt = None,
) -> None:
    """Verification over every pair, ROC points, and rank-1 identification."""
    from faceindex.evaluation.report import evaluate_folder, files_of

    vectors, threshold = _vectors(
        files_of(root), home, as_json, detector=detector, mirror=mirror, detect_fallback=fallback
    )
    _show(evaluate_folder(root, vectors, threshold), as_json)


@app.command("pairs")
@handle_errors
def pairs(
    pairs_file: Path = typer.Argument(..., help="LFW pairs.txt, or CSV file_x,file_y,decision"),
    root: Path = typer.Option(..., "--root", help="where the images are"),
    as_json: bool = typer.Option(False, "--json"),
    detector: str | None = DetectorOpt,
    mirror: bool | None = MirrorOpt,
    fallback: bool | None = FallbackOpt,
    home: HomeOpt = None,
) -> None:
    """Verification on a pairs file (10-fold accuracy when the file defines folds)."""
    from faceindex.evaluation.report import evaluate_pairs, pair_files

    vectors, threshold = _vectors(
        pair_files(pairs_file, root),
        home,
        as_json,
        detector=detector,
        mirror=mirror,
        detect_fallback=fallback,
    )
    _show(evaluate_pairs(pairs_file, root, vectors, threshold), as_json)
