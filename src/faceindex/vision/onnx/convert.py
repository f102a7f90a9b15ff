"""dlib networks (as read by ``dlib_format``) -> ONNX graphs, built with the ``onnx`` helper API.

Each dlib layer maps to one ONNX operator or a short run of them: con -> Conv, affine ->
Mul+Add per channel (folded into the preceding Conv where it directly follows one), relu ->
Relu, max_pool/avg_pool -> MaxPool/AveragePool (window 0x0: GlobalAveragePool), fc ->
Flatten+MatMul(+Add), tag/skip -> the graph's own edges, add_prev -> Add, with the smaller
operand zero-extended at its ends first (dlib's ``tt::add`` adds tensors of different sizes
that way: the ResNet's down-sampling blocks add a 3x3 to a 4x4 and 64 channels to 32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceindex.vision.onnx.dlib_format import (
    AddPrev,
    Affine,
    AvgPool,
    Conv,
    DlibFormatError,
    Fc,
    InputRgb,
    InputRgbPyramid,
    Layer,
    MaxPool,
    Network,
    Relu,
    Skip,
    Tag,
)

__all__ = ["CONVERTER_VERSION", "INPUT_NAME", "OUTPUT_NAME", "to_onnx"]

CONVERTER_VERSION = "1"  # bump when the graphs change: cached conversions are keyed on it
INPUT_NAME = "input"
OUTPUT_NAME = "output"
_OPSET = 17

Shape = tuple[int, int | None, int | None]  # (channels, rows, cols); None: not known statically


@dataclass
class _Value:
    name: str
    shape: Shape


class _Builder:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper = helper
        self._numpy_helper = numpy_helper
        self.nodes: list[object] = []
        self.initializers: list[object] = []
        self._n = 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, array: np.ndarray) -> str:
        name = self.fresh(stem)
        self.initializers.append(self._numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.fresh(stem)
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _pool_out(n: int | None, window: int, stride: int, pad: int) -> int | None:
    if n is None:
        return None
    size = (n + 2 * pad - window) // stride + 1
    if size <= 0:
        raise DlibFormatError(f"a {window}-wide window does not fit a {n}-wide input")
    return size


def _conv(b: _Builder, x: _Value, layer: Conv, affine: Affine | None) -> _Value:
    filters, bias = layer.filters, layer.bias
    if bias is None:
        bias = np.zeros(filters.shape[0], dtype=np.float32)
    if affine is not None:  # affine(conv(x)) = conv'(x): scale each filter and its bias
        filters = filters * affine.gamma[:, None, None, None]
        bias = bias * affine.gamma + affine.beta
    if filters.shape[1] != x.shape[0]:
        raise DlibFormatError(f"con_ expects {filters.shape[1]} channels, gets {x.shape[0]}")
    (sy, sx), (py, px) = layer.stride, layer.padding
    out = b.node(
        "Conv",
        [x.name, b.const("w", filters.astype(np.float32)), b.const("b", bias.astype(np.float32))],
        "conv",
        kernel_shape=list(filters.shape[2:]),
        strides=[sy, sx],
        pads=[py, px, py, px],
    )
    rows = _pool_out(x.shape[1], filters.shape[2], sy, py)
    cols = _pool_out(x.shape[2], filters.shape[3], sx, px)
    return _Value(out, (filters.shape[0], rows, cols))


def _affine(b: _Builder, x: _Value, layer: Affine) -> _Value:
    k = layer.gamma.size
    if k != x.shape[0]:
        raise DlibFormatError(f"affine_ has {k} channels, its input {x.shape[0]}")
    g = b.const("gamma", layer.gamma.reshape(1, k, 1, 1).astype(np.float32))
    beta = b.const("beta", layer.beta.reshape(1, k, 1, 1).astype(np.float32))
    out = b.node("Add", [b.node("Mul", [x.name, g], "mul"), beta], "add")
    return _Value(out, x.shape)


def _pool(b: _Builder, x: _Value, layer: MaxPool | AvgPool) -> _Value:
    if layer.window == (0, 0):
        op = "GlobalMaxPool" if isinstance(layer, MaxPool) else "GlobalAveragePool"
        return _Value(b.node(op, [x.name], "gpool"), (x.shape[0], 1, 1))
    (wy, wx), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
    op = "MaxPool" if isinstance(layer, MaxPool) else "AveragePool"
    out = b.node(
        op, [x.name], "pool", kernel_shape=[wy, wx], strides=[sy, sx], pads=[py, px, py, px]
    )
    shape = (x.shape[0], _pool_out(x.shape[1], wy, sy, py), _pool_out(x.shape[2], wx, sx, px))
    return _Value(out, shape)


def _zero_extend(b: _Builder, x: _Value, shape: Shape) -> str:
    if x.shape == shape:
        return x.name
    if None in x.shape or None in shape:
        raise DlibFormatError("add_prev of differently sized tensors needs a fixed input size")
    grow = [int(s) - int(t) for s, t in zip(shape, x.shape, strict=True)]  # type: ignore[arg-type]
    pads = np.array([0, 0, 0, 0, 0, *grow], dtype=np.int64)
    return b.node("Pad", [x.name, b.const("pads", pads)], "pad")


def _add_prev(b: _Builder, x: _Value, tagged: _Value) -> _Value:
    shape: Shape = tuple(  # type: ignore[assignment]
        None if s is None or t is None else max(s, t)
        for s, t in zip(x.shape, tagged.shape, strict=True)
    )
    out = b.node("Add", [_zero_extend(b, x, shape), _zero_extend(b, tagged, shape)], "sum")
    return _Value(out, shape)


def _fc(b: _Builder, x: _Value, layer: Fc) -> _Value:
    flat = b.node("Flatten", [x.name], "flat", axis=1)
    inputs, outputs = layer.weights.shape
    known = None if None in x.shape else int(np.prod([int(s) for s in x.shape if s is not None]))
    if known is not None and known != inputs:
        raise DlibFormatError(f"fc_ expects {inputs} inputs, gets {known}")
    out = b.node("MatMul", [flat, b.const("fc", layer.weights.astype(np.float32))], "fc")
    if layer.bias is not None:
        out = b.node("Add", [out, b.const("fcb", layer.bias.astype(np.float32))], "fcb")
    return _Value(out, (outputs, 1, 1))


def _normalise_rgb(b: _Builder, net_input: InputRgb) -> _Value:
    """uint8 (N, rows, cols, 3) RGB -> dlib's (pixel - mean) / 256 in (N, 3, rows, cols)."""
    x = b.node("Cast", [INPUT_NAME], "cast", to=1)  # FLOAT
    mean = b.const("mean", np.asarray(net_input.mean, dtype=np.float32).reshape(1, 1, 1, 3))
    scale = b.const("scale", np.asarray(1 / 256, dtype=np.float32))
    x = b.node("Mul", [b.node("Sub", [x, mean], "centre"), scale], "scale")
    x = b.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    rows, cols = net_input.size if net_input.size else (None, None)
    return _Value(x, (3, rows, cols))


def to_onnx(
    network: Network,
    *,
    fold_affine: bool = True,
    doc: str = "",
    metadata: dict[str, str] | None = None,
) -> bytes:
    """The network as a serialised ONNX model.

    An ``input_rgb_image`` network takes uint8 RGB images, (N, rows, cols, 3), and does
    dlib's normalisation in the graph. An ``input_rgb_image_pyramid`` network takes the
    normalised float32 tensor, (N, 3, rows, cols), because dlib builds its tiled pyramid
    after normalising (``pyramid.py`` reproduces that). The output is the last layer's.
    """
    from onnx import TensorProto, checker, helper

    b = _Builder()
    if isinstance(network.input, InputRgb):
        x = _normalise_rgb(b, network.input)
        rows, cols = network.input.size if network.input.size else ("rows", "cols")
        in_info = helper.make_tensor_value_info(
            INPUT_NAME, TensorProto.UINT8, ["batch", rows, cols, 3]
        )
    elif isinstance(network.input, InputRgbPyramid):
        x = _Value(INPUT_NAME, (3, None, None))
        in_info = helper.make_tensor_value_info(
            INPUT_NAME, TensorProto.FLOAT, ["batch", 3, "rows", "cols"]
        )
    else:  # pragma: no cover - the reader returns only these two
        raise DlibFormatError(f"unsupported input layer {network.input!r}")

    tags: dict[int, _Value] = {}
    inner_first: list[Layer] = list(reversed(network.layers))
    i = 0
    while i < len(inner_first):
        layer = inner_first[i]
        if isinstance(layer, Conv):
            nxt = inner_first[i + 1] if i + 1 < len(inner_first) else None
            if fold_affine and isinstance(nxt, Affine) and nxt.conv_mode:
                x = _conv(b, x, layer, nxt)
                i += 1
            else:
                x = _conv(b, x, layer, None)
        elif isinstance(layer, Affine):
            x = _affine(b, x, layer)
        elif isinstance(layer, Relu):
            x = _Value(b.node("Relu", [x.name], "relu"), x.shape)
        elif isinstance(layer, MaxPool | AvgPool):
            x = _pool(b, x, layer)
        elif isinstance(layer, Fc):
            x = _fc(b, x, layer)
        elif isinstance(layer, Tag):
            tags[layer.id] = x
        elif isinstance(layer, Skip):
            x = _tagged(tags, layer.id)
        elif isinstance(layer, AddPrev):
            x = _add_prev(b, x, _tagged(tags, layer.tag))
        else:  # pragma: no cover
            raise DlibFormatError(f"no ONNX mapping for {type(layer).__name__}")
        i += 1

    b.nodes.append(helper.make_node("Identity", [x.name], [OUTPUT_NAME], name="output"))
    out_shape: list[str | int] = ["batch", x.shape[0]]
    if isinstance(network.layers[0], Fc):
        out_info = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_shape)
    else:
        out_info = helper.make_tensor_value_info(
            OUTPUT_NAME, TensorProto.FLOAT, [*out_shape, "out_rows", "out_cols"]
        )
    graph = helper.make_graph(b.nodes, "dlib", [in_info], [out_info], b.initializers)  # type: ignore[arg-type]
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="faceindex",
        producer_version=CONVERTER_VERSION,
        doc_string=doc,
    )
    if metadata:
        helper.set_model_props(model, dict(metadata))
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    checker.check_model(model)
    return bytes(model.SerializeToString())


def _tagged(tags: dict[int, _Value], tag: int) -> _Value:
    if tag not in tags:
        raise DlibFormatError(f"a layer refers to tag{tag}, which no inner layer sets")
    return tags[tag]
