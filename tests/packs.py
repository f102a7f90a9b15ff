"""Small ONNX graphs with the signatures of an InsightFace pack, and pictures they "see".

No SCRFD or ArcFace weights are reachable here, so the tests build stand-ins with the same
inputs and outputs (``onnx.helper``) whose answers are known:

- the detector (input ``input.1`` (1, 3, 64, 64); outputs ``score_{8,16,32}`` (n, 1),
  ``bbox_*`` (n, 4), ``kps_*`` (n, 10), 2 anchors per cell) scores each stride-32 cell by
  how red it is (a face is a fully red quadrant of the letterboxed picture) and places the
  box on the cell and the 5 landmarks where ArcFace's template puts them in that box;
  strides 8 and 16 never fire;
- the recogniser (input ``input.1`` (N, 3, 112, 112), output ``embedding`` (N, DIM)) pools
  the green and blue channels to 4x4 and projects them with a fixed random matrix, so two
  chips of the same colour pattern embed alike and two patterns differ.

:func:`face_picture` paints a "person" (a random 4x4 pattern of green/blue blocks on red)
into one quadrant of a 128x128 picture.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from faceindex.vision.similarity import ARCFACE_112

__all__ = ["DIM", "SIDE", "face_picture", "write_pack"]

SIDE = 64  # the detector's input
DIM = 16
STRIDES = (8, 16, 32)


def _const(name: str, value: np.ndarray) -> object:
    from onnx import helper, numpy_helper

    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(value.astype(np.float32), name)
    )


def _save(graph: object, path: Path) -> None:
    from onnx import checker, helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # old enough for every onnxruntime that supports opset 13
    checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def detector_graph(path: Path, *, order: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Write the stand-in SCRFD; returns its output names in the layout's order."""
    from onnx import TensorProto, helper

    nodes: list[object] = []
    layout: list[str] = []
    outputs: dict[str, tuple[int, int]] = {}
    template = np.asarray(ARCFACE_112) / 112.0  # in stride units: the box is one cell
    for kind in ("score", "bbox", "kps"):
        for s in STRIDES:
            name = f"{kind}_{s}"
            layout.append(name)
            n = (SIDE // s) ** 2 * 2
            width = {"score": 1, "bbox": 4, "kps": 10}[kind]
            outputs[name] = (n, width)
            if kind == "score" and s == 32:
                nodes += [
                    _const("starts", np.array([0])),
                    _const("ends", np.array([1])),
                    _const("axes", np.array([1])),
                ]
                for c in ("starts", "ends", "axes"):  # Slice takes int64 bounds
                    nodes.append(helper.make_node("Cast", [c], [c + "_i"], to=TensorProto.INT64))
                nodes += [
                    helper.make_node("Slice", ["input.1", "starts_i", "ends_i", "axes_i"], ["red"]),
                    helper.make_node(
                        "AveragePool", ["red"], ["pooled"], kernel_shape=[32, 32], strides=[32, 32]
                    ),
                    _const("half", np.array(0.5)),
                    _const("gain", np.array(8.0)),
                    helper.make_node("Sub", ["pooled", "half"], ["centred"]),
                    helper.make_node("Mul", ["centred", "gain"], ["logit"]),
                    helper.make_node("Sigmoid", ["logit"], ["prob"]),
                    _const("cells", np.array([-1, 1])),
                    helper.make_node("Cast", ["cells"], ["cells_i"], to=TensorProto.INT64),
                    helper.make_node("Reshape", ["prob", "cells_i"], ["per_cell"]),
                    helper.make_node("Concat", ["per_cell", "per_cell"], ["pairs"], axis=1),
                    _const("rows", np.array([-1, 1])),
                    helper.make_node("Cast", ["rows"], ["rows_i"], to=TensorProto.INT64),
                    helper.make_node("Reshape", ["pairs", "rows_i"], [name]),
                ]
            elif kind == "score":
                nodes.append(_const(name, np.zeros((n, 1))))
            elif kind == "bbox":
                value = np.tile([0.0, 0.0, 1.0, 1.0], (n, 1)) if s == 32 else np.zeros((n, 4))
                nodes.append(_const(name, value))
            else:
                value = np.tile(template.ravel(), (n, 1)) if s == 32 else np.zeros((n, 10))
                nodes.append(_const(name, value))
    names = order or tuple(layout)
    graph = helper.make_graph(
        nodes,
        "scrfd-standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(outputs[o])) for o in names],
    )
    _save(graph, path)
    return tuple(layout)


def recogniser_graph(path: Path, seed: int = 7, dim: int = DIM) -> None:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((48, dim))
    weights[:16] = 0.0  # the red channel marks where a face is, not who it is
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[28, 28], strides=[28, 28]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        _const("w", weights),
        helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface-standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
    )
    _save(graph, path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pack(
    root: Path,
    *,
    thresholds: tuple[float, float, float, float] = (0.3, 0.4, 0.25, 0.3),
    named_outputs: bool = False,
    fmt: str = "toml",
    name: str = "standin",
    dim: int = DIM,
    seed: int = 7,
) -> Path:
    """A complete InsightFace-layout pack directory of stand-in graphs."""
    root.mkdir(parents=True, exist_ok=True)
    layout = detector_graph(root / "det.onnx")
    recogniser_graph(root / "rec.onnx", seed, dim)
    match, possible, erase, suppress = thresholds
    outputs = f"outputs = {list(layout)!r}\n".replace("'", '"') if named_outputs else ""
    if fmt == "toml":
        (root / "pack.toml").write_text(
            f'name = "{name}"\nversion = "1"\ndim = {dim}\nmetric = "cosine"\n'
            f'calibration = "{name}"\n\n'
            f'[detector]\nkind = "scrfd"\nfile = "det.onnx"\nsha256 = "{_sha(root / "det.onnx")}"\n'
            f"input_size = {SIDE}\n{outputs}\n"
            f'[aligner]\nkind = "similarity-5"\n\n'
            f'[embedder]\nkind = "arcface"\nfile = "rec.onnx"\n'
            f'sha256 = "{_sha(root / "rec.onnx")}"\n'
            f'input_size = 112\nmean = 127.5\nstd = 127.5\nchannels = "rgb"\n\n'
            f"[thresholds]\nmatch = {match}\npossible = {possible}\nerase = {erase}\n"
            f"suppress = {suppress}\n"
        )
    else:
        import json

        det: dict[str, object] = {
            "kind": "scrfd",
            "file": "det.onnx",
            "sha256": _sha(root / "det.onnx"),
            "input_size": SIDE,
        }
        if named_outputs:
            det["outputs"] = list(layout)
        body = {
            "name": name,
            "version": "1",
            "dim": dim,
            "metric": "cosine",
            "detector": det,
            "aligner": {"kind": "similarity-5"},
            "embedder": {
                "kind": "arcface",
                "file": "rec.onnx",
                "sha256": _sha(root / "rec.onnx"),
                "input_size": 112,
                "mean": 127.5,
                "std": 127.5,
            },
            "thresholds": dict(
                zip(("match", "possible", "erase", "suppress"), thresholds, strict=True)
            ),
        }
        (root / "pack.json").write_text(json.dumps(body))
    _calibration(root, name, match, possible)
    return root


def _calibration(root: Path, name: str, match: float, possible: float) -> None:
    """The pack's own calibration (``<name>.calibration.json`` beside pack.toml): made-up
    distances with the stand-in's separation, same people within ``match`` and strangers
    beyond ``possible``, so its bands behave as a real pack's would."""
    from faceindex.vision.calibration import fit_calibration

    rng = np.random.default_rng(0)
    cal = fit_calibration(
        rng.uniform(possible, 1.41, 4000),
        rng.uniform(0.0, match, 400),
        model=name,
        measured_on="stand-in distances (tests/packs.py)",
        identities=40,
    )
    cal.save(root / f"{name}.calibration.json")


def face_picture(person: int, quadrants: tuple[int, ...] = (3,), size: int = 128) -> np.ndarray:
    """A picture with ``person``'s face in each quadrant (0 top-left .. 3 bottom-right)."""
    rng = np.random.default_rng(1000 + person)
    pattern = rng.integers(0, 256, size=(4, 4, 2))
    half = size // 2
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[..., 1:] = 40
    block = np.kron(pattern, np.ones((half // 4, half // 4, 1))).astype(np.uint8)
    for q in quadrants:
        top, left = (q // 2) * half, (q % 2) * half
        img[top : top + half, left : left + half, 0] = 255
        img[top : top + half, left : left + half, 1:] = block
    return img
