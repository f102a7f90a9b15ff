"""A reader for dlib's serialised DNNs (the ``.dat`` files face_recognition_models ships).

dlib writes a network by recursion over its C++ type: each wrapper (``add_layer``,
``add_tag_layer``, ``add_skip_layer``) writes a version number and then its subnetwork, and
only after the subnetwork do the layer's own details follow. A file is therefore

    loss version, loss details, the wrappers' versions (outermost first),
    the input layer, then each wrapper's trailer (innermost first).

Tags and skips write no id, so the file alone does not say which tag a skip or an
``add_prev`` refers to: dlib reads it with the C++ type in hand, and so does this reader,
with the type written out as a :data:`Spec` (see ``networks.py``). Every layer's own record
starts with a type string (``con_4``, ``affine_``...) that the reader checks against the spec.

Encodings (dlib/serialize.h): an integer is a control byte (bit 7: negative, low 4 bits:
how many little-endian bytes follow) and its bytes; a float is two such integers, a
mantissa and a binary exponent (32000-32002 mean inf, -inf, nan); a bool is ASCII ``'1'``
or ``'0'``; a string its length and its bytes; a tensor's values are raw little-endian
float32 after its version and its four dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceindex.errors import ModelError

__all__ = [
    "AddPrev",
    "Affine",
    "Conv",
    "DetectorWindow",
    "DlibFormatError",
    "Fc",
    "InputRgb",
    "InputRgbPyramid",
    "Layer",
    "LossMetric",
    "LossMmod",
    "MaxPool",
    "AvgPool",
    "Network",
    "Relu",
    "Skip",
    "Spec",
    "Tag",
    "read_network",
]


class DlibFormatError(ModelError):
    """The bytes are not the dlib network the spec describes."""


# -- layer records ------------------------------------------------------------------------


@dataclass(frozen=True)
class Conv:
    filters: np.ndarray  # (out, in, rows, cols), float32: cross-correlation, as ONNX Conv
    bias: np.ndarray | None  # (out,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), on both sides


@dataclass(frozen=True)
class Affine:
    """y = x * gamma[k] + beta[k] per channel (dlib's inference form of batch norm)."""

    gamma: np.ndarray
    beta: np.ndarray
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class MaxPool:
    window: tuple[int, int]  # (rows, cols); (0, 0) means the whole plane
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AvgPool:
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Fc:
    weights: np.ndarray  # (inputs, outputs): y = x @ weights (+ bias)
    bias: np.ndarray | None


@dataclass(frozen=True)
class AddPrev:
    """Adds the output of the nearest inner tag ``tag``; smaller tensors are zero-extended."""

    tag: int


@dataclass(frozen=True)
class Tag:
    id: int


@dataclass(frozen=True)
class Skip:
    """Its output is the output of the nearest inner tag ``id`` (its input is dropped)."""

    id: int


Layer = Conv | Affine | Relu | MaxPool | AvgPool | Fc | AddPrev | Tag | Skip


@dataclass(frozen=True)
class InputRgb:
    """``(pixel - mean) / 256`` per channel, planes in R, G, B order."""

    mean: tuple[float, float, float]
    size: tuple[int, int] | None  # (rows, cols) for input_rgb_image_sized


@dataclass(frozen=True)
class InputRgbPyramid:
    mean: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass(frozen=True)
class LossMetric:
    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class DetectorWindow:
    width: int
    height: int
    label: str


@dataclass(frozen=True)
class LossMmod:
    windows: tuple[DetectorWindow, ...]
    loss_per_false_alarm: float
    loss_per_missed_target: float
    truth_match_iou_threshold: float
    nms_iou: float
    nms_covered: float
    ignore_iou: float
    ignore_covered: float
    assume_image_pyramid: bool
    bbox_regression: bool


@dataclass(frozen=True)
class Network:
    loss: LossMetric | LossMmod
    layers: tuple[Layer, ...]  # outermost first, as dlib's type reads
    input: InputRgb | InputRgbPyramid
    sha256: str = field(default="")


# A spec entry: a layer kind ("con", "affine", "relu", "max_pool", "avg_pool", "fc") or a
# (kind, id) pair for "tag", "skip" and "add_prev". Outermost first, loss and input excluded.
SpecEntry = str | tuple[str, int]
Spec = Sequence[SpecEntry]

_LAYER_KINDS = {"con", "affine", "relu", "max_pool", "avg_pool", "fc", "add_prev"}


# -- primitive decoding -------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self._data):
            raise DlibFormatError(f"file ends at byte {len(self._data)}, wanted {n} more")
        out = self._data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def uint(self) -> int:
        at = self.pos
        value = self.int_()
        if value < 0:
            raise DlibFormatError(f"negative value where dlib writes an unsigned one at {at}")
        return value

    def float_(self) -> float:
        mantissa = self.int_()
        exponent = self.int_()
        if exponent == 32000:
            return math.inf
        if exponent == 32001:
            return -math.inf
        if exponent == 32002:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def bool_(self) -> bool:
        ch = self._take(1)[0]
        if ch not in (ord("0"), ord("1")):
            raise DlibFormatError(f"bad bool byte 0x{ch:02x} at {self.pos - 1}")
        return ch == ord("1")

    def string(self) -> str:
        n = self.uint()
        return bytes(self._take(n)).decode("latin-1")

    def peek_is_string(self) -> bool:
        """Whether a string (a layer's type name) starts here rather than a version number.

        Wrapper versions are 1-3; every type name dlib writes is longer than 3 characters.
        """
        if self.pos + 2 > len(self._data):
            return False
        return self._data[self.pos] == 0x01 and self._data[self.pos + 1] > 3

    def tensor(self) -> np.ndarray:
        version = self.int_()
        if version != 2:
            raise DlibFormatError(f"tensor version {version}, dlib writes 2")
        shape = tuple(self.int_() for _ in range(4))
        if min(shape) < 0:
            raise DlibFormatError(f"tensor with negative dimension {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int_()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version}, dlib writes 1")
        n, k, r, c = (self.int_() for _ in range(4))
        return n, k, r, c


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    flat = params.reshape(-1)
    if sum(_size(s) for s in shapes) != flat.size:
        raise DlibFormatError(f"parameters hold {flat.size} values, the layout needs {shapes}")
    out, at = [], 0
    for s in shapes:
        out.append(flat[at : at + _size(s)].reshape(s).copy())
        at += _size(s)
    return out


# -- layers -------------------------------------------------------------------------------


def _read_con(r: _Reader, version: str) -> Conv:
    if version not in ("con_4", "con_5", "con_6"):
        raise DlibFormatError(f"unsupported con_ version {version!r}")
    params = r.tensor()
    num_filters = r.int_()
    nr, nc = r.int_(), r.int_()
    stride = (r.int_(), r.int_())
    padding = (r.int_(), r.int_())
    filters_shape = r.alias_tensor()
    biases_shape = r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float_()
    use_bias = r.bool_() if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.bool_()  # use_relu: a fused relu only dlib's CUDA path applies; the net has its own
    if filters_shape[0] != num_filters or filters_shape[2:] != (nr, nc):
        raise DlibFormatError(f"con_ filters {filters_shape} disagree with {num_filters}x{nr}x{nc}")
    has_bias = use_bias and _size(biases_shape) > 0
    if has_bias:
        filters, bias = _split(params, filters_shape, (num_filters,))
        return Conv(filters, bias, stride, padding)
    (filters,) = _split(params, filters_shape)
    return Conv(filters, None, stride, padding)


def _read_affine(r: _Reader, version: str) -> Affine:
    if version == "bn_con2" or version == "bn_fc2":
        return _affine_from_bn(r, conv_mode=version == "bn_con2")
    if version not in ("affine_", "affine_2"):
        raise DlibFormatError(f"unsupported affine_ version {version!r}")
    params = r.tensor()
    gamma_shape = r.alias_tensor()
    beta_shape = r.alias_tensor()
    mode = r.int_()
    if version == "affine_2" and r.bool_():
        raise DlibFormatError("a disabled affine_ layer is not supported")
    gamma, beta = _split(params, gamma_shape, beta_shape)
    return Affine(gamma.reshape(-1), beta.reshape(-1), conv_mode=mode == 0)  # CONV_MODE = 0


def _affine_from_bn(r: _Reader, *, conv_mode: bool) -> Affine:
    """dlib turns a saved batch norm into an affine layer when loading for inference."""
    params = r.tensor()
    gamma_shape = r.alias_tensor()
    beta_shape = r.alias_tensor()
    for _ in range(2):  # means, invstds of the last training batch
        r.tensor()
    running_means = r.tensor().reshape(-1)
    running_vars = r.tensor().reshape(-1)
    r.uint()  # num_updates
    r.uint()  # running_stats_window_size
    for _ in range(4):
        r.float_()
    eps = r.float_()
    gamma, beta = _split(params, gamma_shape, beta_shape)
    g = gamma.reshape(-1) / np.sqrt(running_vars + np.float32(eps))
    b = beta.reshape(-1) - g * running_means
    return Affine(g.astype(np.float32), b.astype(np.float32), conv_mode=conv_mode)


def _read_pool(r: _Reader, version: str, kind: str) -> MaxPool | AvgPool:
    if version != f"{kind}_2":
        raise DlibFormatError(f"unsupported {kind}_ version {version!r}")
    window = (r.int_(), r.int_())
    stride = (r.int_(), r.int_())
    padding = (r.int_(), r.int_())
    cls = MaxPool if kind == "max_pool" else AvgPool
    return cls(window, stride, padding)


def _read_fc(r: _Reader, version: str) -> Fc:
    if version not in ("fc_2", "fc_3"):
        raise DlibFormatError(f"unsupported fc_ version {version!r}")
    outputs = r.uint()
    inputs = r.uint()
    params = r.tensor()
    weights_shape = r.alias_tensor()
    biases_shape = r.alias_tensor()
    bias_mode = r.int_()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    for _ in range(4):
        r.float_()
    use_bias = r.bool_() if version == "fc_3" else True
    if _size(weights_shape) != inputs * outputs:
        raise DlibFormatError(f"fc_ weights {weights_shape} are not {inputs}x{outputs}")
    if bias_mode == 0 and use_bias:
        weights, bias = _split(params, (inputs, outputs), (_size(biases_shape),))
        return Fc(weights, bias)
    (weights,) = _split(params, (inputs, outputs))
    return Fc(weights, None)


def _read_relu(r: _Reader, version: str) -> Relu:
    if version == "relu_2":
        if r.bool_():
            raise DlibFormatError("a disabled relu_ layer is not supported")
    elif version != "relu_":
        raise DlibFormatError(f"unsupported relu_ version {version!r}")
    return Relu()


_READERS: dict[str, Callable[[_Reader, str], Layer]] = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_relu,
    "max_pool": lambda r, v: _read_pool(r, v, "max_pool"),
    "avg_pool": lambda r, v: _read_pool(r, v, "avg_pool"),
    "fc": _read_fc,
}


def _read_details(r: _Reader, entry: SpecEntry) -> Layer:
    kind, ref = (entry, 0) if isinstance(entry, str) else entry
    at = r.pos
    version = r.string()
    if kind == "add_prev":
        if version != "add_prev_":
            raise DlibFormatError(f"expected add_prev_ at byte {at}, found {version!r}")
        return AddPrev(ref)
    expected = "bn_" if kind == "affine" and version.startswith("bn_") else kind
    if not version.startswith(expected):
        raise DlibFormatError(f"expected a {kind} layer at byte {at}, found {version!r}")
    return _READERS[kind](r, version)


def _read_input(r: _Reader) -> InputRgb | InputRgbPyramid:
    version = r.string()
    if version in ("input_rgb_image", "input_rgb_image_sized"):
        mean = (r.float_(), r.float_(), r.float_())
        size = (r.uint(), r.uint()) if version == "input_rgb_image_sized" else None
        return InputRgb(mean, size)
    if version in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        mean = (r.float_(), r.float_(), r.float_())
        if version == "input_rgb_image_pyramid2":
            return InputRgbPyramid(mean, r.uint(), r.uint())
        return InputRgbPyramid(mean, 10, 11)  # dlib's defaults before they were written
    raise DlibFormatError(f"unsupported input layer {version!r}")


def _read_loss(r: _Reader) -> LossMetric | LossMmod:
    version = r.string()
    if version == "loss_metric_":
        return LossMetric(0.1, 0.75)  # the values dlib hard-coded in that version
    if version == "loss_metric_2":
        return LossMetric(r.float_(), r.float_())
    if version == "loss_mmod_":
        return _read_mmod_options(r)
    raise DlibFormatError(f"unsupported loss layer {version!r}")


def _read_mmod_options(r: _Reader) -> LossMmod:
    version = r.int_()
    if not 1 <= version <= 4:
        raise DlibFormatError(f"mmod_options version {version}, dlib reads 1-4")
    if version == 1:
        windows: tuple[DetectorWindow, ...] = (DetectorWindow(r.uint(), r.uint(), ""),)
    else:
        found = []
        for _ in range(r.uint()):
            v = r.int_()
            w, h = r.uint(), r.uint()
            found.append(DetectorWindow(w, h, r.string() if v == 2 else ""))
        windows = tuple(found)
    fa, miss, match = r.float_(), r.float_(), r.float_()
    nms_iou, nms_cov = r.float_(), r.float_()
    ign_iou, ign_cov = r.float_(), r.float_()
    pyramid = True
    if version >= 3:
        pyramid = r._take(1)[0] != 0  # a uint8: dlib writes bytes raw, not as integers
    bbr = False
    if version >= 4:
        bbr = r.bool_()
        r.float_()  # bbr_lambda: training only
    return LossMmod(windows, fa, miss, match, nms_iou, nms_cov, ign_iou, ign_cov, pyramid, bbr)


# -- the network --------------------------------------------------------------------------


def _check_spec(spec: Spec) -> None:
    for entry in spec:
        kind = entry if isinstance(entry, str) else entry[0]
        if kind not in _LAYER_KINDS | {"tag", "skip"}:
            raise DlibFormatError(f"spec names unknown layer kind {kind!r}")
        if kind in ("tag", "skip", "add_prev") and not isinstance(entry, tuple):
            raise DlibFormatError(f"spec entry {kind!r} needs a tag id")


def read_network(data: bytes, spec: Spec) -> Network:
    """Parse a dlib network file whose C++ type ``spec`` describes (outermost layer first).

    Raises :class:`DlibFormatError` where the bytes and the spec disagree.
    """
    _check_spec(spec)
    if not spec:
        raise DlibFormatError("an empty spec")
    r = _Reader(data)
    if r.int_() != 1:
        raise DlibFormatError("not a dlib network: add_loss_layer version is not 1")
    loss = _read_loss(r)
    versions = []
    for i, entry in enumerate(spec):
        at = r.pos
        version = r.int_()
        kind = entry if isinstance(entry, str) else entry[0]
        on_input = i == len(spec) - 1
        allowed = {
            ("layer", False): (1, 2),
            ("layer", True): (2, 3),
            ("tag", False): (1,),
            ("tag", True): (1, 2),
            ("skip", False): (1,),
        }.get(("layer" if kind in _LAYER_KINDS else kind, on_input), ())
        if version not in allowed:
            raise DlibFormatError(
                f"layer {i} ({entry!r}) has wrapper version {version} at byte {at}; "
                f"the file does not match this network's spec"
            )
        versions.append(version)
    if not r.peek_is_string():
        raise DlibFormatError(f"expected the input layer at byte {r.pos}: the spec is too short")
    net_input = _read_input(r)
    layers: list[Layer] = []
    for i in range(len(spec) - 1, -1, -1):
        entry = spec[i]
        kind = entry if isinstance(entry, str) else entry[0]
        on_input = i == len(spec) - 1
        if kind in ("tag", "skip"):
            ref = entry[1] if isinstance(entry, tuple) else 0
            if on_input:  # add_tag_layer over the input keeps its own buffers
                r.tensor()  # cached_output
                r.tensor()  # grad_final
                r.bool_()
                if versions[i] >= 2:
                    r.int_()
            layers.append(Tag(ref) if kind == "tag" else Skip(ref))
            continue
        layers.append(_read_details(r, entry))
        for _ in range(3):  # setup-called, gradient-stale, output-disabled flags
            r.bool_()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if on_input:
            r.tensor()  # grad_final
            if versions[i] >= 3:
                r.int_()  # sample expansion factor
        elif versions[i] == 2:
            r.tensor()  # params_grad
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} bytes left after the network")
    return Network(loss, tuple(reversed(layers)), net_input)
