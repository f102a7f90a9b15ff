"""The dlib network reader: dlib's encodings byte by byte, a small network written here the way
dlib writes one, and the two real files face_recognition_models ships."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from faceindex.vision.onnx.dlib_format import (
    AddPrev,
    Affine,
    AvgPool,
    Conv,
    DlibFormatError,
    Fc,
    InputRgb,
    LossMetric,
    LossMmod,
    MaxPool,
    Relu,
    Skip,
    Tag,
    _Reader,
    read_network,
)
from faceindex.vision.onnx.networks import MMOD_FACE_DETECTOR, RESNET_FACE_DESCRIPTOR

pytestmark = pytest.mark.unit


# -- a writer of dlib's format, after dlib/serialize.h, for building test files --------------


def enc_int(v: int) -> bytes:
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def enc_float(v: float) -> bytes:
    mantissa, exponent = math.frexp(v)
    m = int(mantissa * (1 << 53))
    e = exponent - 53
    while m and m & 0xFF == 0:
        m >>= 8
        e += 8
    return enc_int(m) + enc_int(e)


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_bool(b: bool) -> bytes:
    return b"1" if b else b"0"


def enc_tensor(a: np.ndarray) -> bytes:
    shape = (list(a.shape) + [1, 1, 1, 1])[:4] if a.size else [0, 0, 0, 0]
    return enc_int(2) + b"".join(enc_int(s) for s in shape) + a.astype("<f4").tobytes()


def enc_alias(*shape: int) -> bytes:
    return enc_int(1) + b"".join(enc_int(s) for s in shape)


EMPTY = enc_tensor(np.zeros(0, dtype=np.float32))
MULTS = b"".join(enc_float(x) for x in (1.0, 1.0, 1.0, 0.0))


def con_record(filters: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> bytes:
    o, i, r, c = filters.shape
    params = np.concatenate([filters.reshape(-1), bias])
    return (
        enc_str("con_4")
        + enc_tensor(params.reshape(-1, 1, 1, 1))
        + enc_int(o)
        + enc_int(r)
        + enc_int(c)
        + enc_int(stride)
        + enc_int(stride)
        + enc_int(pad)
        + enc_int(pad)
        + enc_alias(o, i, r, c)
        + enc_alias(1, o, 1, 1)
        + MULTS
    )


def layer_trailer(details: bytes) -> bytes:  # add_layer version 2 over a layer
    return details + enc_bool(True) * 3 + EMPTY + EMPTY + EMPTY


# -- primitives ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [(b"\x01\x00", 0), (b"\x01\x05", 5), (b"\x81\x05", -5), (b"\x02\x2c\x01", 300)],
)
def test_integers_are_control_byte_then_little_endian(raw: bytes, value: int) -> None:
    assert _Reader(raw).int_() == value
    assert enc_int(value) == raw


def test_floats_are_mantissa_then_exponent() -> None:
    # 0.04 as it sits in the ResNet file (loss_metric's margin)
    assert _Reader(b"\x03\x0a\xd7\xa3\x81\x1c").float_() == pytest.approx(0.04, rel=1e-7)
    assert _Reader(b"\x01\x10\x81\x04").float_() == 1.0
    assert _Reader(enc_int(0) + enc_int(32000)).float_() == math.inf
    assert math.isnan(_Reader(enc_int(0) + enc_int(32002)).float_())
    assert _Reader(enc_float(-3.25)).float_() == -3.25


def test_bad_bytes_are_errors_not_garbage() -> None:
    with pytest.raises(DlibFormatError, match="control byte"):
        _Reader(b"\x70\x01").int_()
    with pytest.raises(DlibFormatError, match="bool"):
        _Reader(b"x").bool_()
    with pytest.raises(DlibFormatError, match="ends"):
        _Reader(b"\x02\x01").int_()


def test_tensors_are_raw_float32() -> None:
    a = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)
    got = _Reader(enc_tensor(a)).tensor()
    assert got.shape == (1, 2, 3, 1)
    np.testing.assert_array_equal(got, a)
    assert struct.pack("<f", 5.0) in enc_tensor(a)


# -- a small network, written as dlib writes one ------------------------------------------

# loss_metric<fc<2, relu<add_prev1<skip1<tag2<affine(bn)<con<2,3,3,1,1,tag1<
#     input_rgb_image_sized<4>>>>>>>>>>
SPEC = ["fc", "relu", ("add_prev", 2), ("skip", 1), ("tag", 2), "affine", "con", ("tag", 1)]


def small_network_bytes(rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    filters = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(size=2).astype(np.float32)
    gamma, beta = np.array([2.0, 0.5], np.float32), np.array([0.1, -0.2], np.float32)
    means, variances = np.array([0.3, -0.1], np.float32), np.array([4.0, 0.25], np.float32)
    weights = rng.normal(size=(32, 2)).astype(np.float32)
    bn = (
        enc_str("bn_con2")
        + enc_tensor(np.concatenate([gamma, beta]).reshape(-1, 1, 1, 1))
        + enc_alias(1, 2, 1, 1)
        + enc_alias(1, 2, 1, 1)
        + EMPTY
        + EMPTY
        + enc_tensor(means.reshape(1, 2, 1, 1))
        + enc_tensor(variances.reshape(1, 2, 1, 1))
        + enc_int(100)
        + enc_int(1000)
        + MULTS
        + enc_float(1e-5)
    )
    fc = (
        enc_str("fc_2")
        + enc_int(2)
        + enc_int(32)
        + enc_tensor(weights.reshape(-1, 1, 1, 1))
        + enc_alias(32, 2, 1, 1)
        + enc_alias(0, 0, 0, 0)
        + enc_int(1)  # FC_NO_BIAS
        + MULTS
    )
    data = (
        enc_int(1)
        + enc_str("loss_metric_2")
        + enc_float(0.04)
        + enc_float(0.6)
        # wrappers, outermost first: fc, relu, add_prev (layers), skip, tag2 (1),
        # affine, con (layers), tag1 over the input (2)
        + enc_int(2) * 3
        + enc_int(1) * 2
        + enc_int(2) * 2
        + enc_int(2)
        + enc_str("input_rgb_image_sized")
        + enc_float(122.782)
        + enc_float(117.001)
        + enc_float(104.298)
        + enc_int(4)
        + enc_int(4)
        # tag1's trailer over the input, then each layer's, innermost first
        + EMPTY
        + EMPTY
        + enc_bool(False)
        + enc_int(1)
        + layer_trailer(con_record(filters, bias, 1, 1))
        + layer_trailer(bn)
        + layer_trailer(enc_str("add_prev_"))
        + layer_trailer(enc_str("relu_"))
        + layer_trailer(fc)
    )
    g = gamma / np.sqrt(variances + 1e-5)
    return data, {
        "filters": filters,
        "bias": bias,
        "gamma": g,
        "beta": beta - g * means,
        "weights": weights,
    }


def test_reads_a_network_written_the_way_dlib_writes_one() -> None:
    data, want = small_network_bytes(np.random.default_rng(0))
    net = read_network(data, SPEC)
    assert net.loss == LossMetric(pytest.approx(0.04), pytest.approx(0.6))  # type: ignore[arg-type]
    assert isinstance(net.input, InputRgb)
    assert net.input.size == (4, 4)
    assert net.input.mean == pytest.approx((122.782, 117.001, 104.298))
    kinds = [type(x) for x in net.layers]
    assert kinds == [Fc, Relu, AddPrev, Skip, Tag, Affine, Conv, Tag]
    fc, _, add, skip, tag2, affine, con, tag1 = net.layers
    assert isinstance(con, Conv) and con.bias is not None
    np.testing.assert_array_equal(con.filters, want["filters"])
    np.testing.assert_array_equal(con.bias, want["bias"])
    assert con.stride == (1, 1) and con.padding == (1, 1)
    # a saved batch norm is turned into dlib's inference affine form
    assert isinstance(affine, Affine) and affine.conv_mode
    np.testing.assert_allclose(affine.gamma, want["gamma"], rtol=1e-6)
    np.testing.assert_allclose(affine.beta, want["beta"], rtol=1e-6)
    assert isinstance(fc, Fc) and fc.bias is None
    np.testing.assert_array_equal(fc.weights, want["weights"])
    assert (add, skip, tag2, tag1) == (AddPrev(2), Skip(1), Tag(2), Tag(1))


def test_a_spec_that_does_not_match_the_file_is_an_error() -> None:
    data, _ = small_network_bytes(np.random.default_rng(0))
    with pytest.raises(DlibFormatError, match="wrapper version"):
        read_network(data, ["fc", ("tag", 1), *SPEC[2:]])
    with pytest.raises(DlibFormatError, match="expected a relu"):
        read_network(data, ["fc", "relu", "relu", *SPEC[3:]])
    with pytest.raises(DlibFormatError):
        read_network(data[:-5], SPEC)
    with pytest.raises(DlibFormatError, match="left after"):
        read_network(data + b"\x00", SPEC)


# -- the real files -----------------------------------------------------------------------


def test_reads_dlibs_resnet_descriptor() -> None:
    from faceindex.vision.models import DLIB_RESNET, model_path

    net = read_network(model_path(DLIB_RESNET).read_bytes(), RESNET_FACE_DESCRIPTOR)
    assert isinstance(net.loss, LossMetric)
    assert net.loss.distance_threshold == pytest.approx(0.6)
    assert net.input == InputRgb(pytest.approx((122.782, 117.001, 104.298)), (150, 150))  # type: ignore[arg-type]
    convs = [x for x in net.layers if isinstance(x, Conv)]
    assert len(convs) == 29
    assert sum(isinstance(x, AddPrev) for x in net.layers) == 14
    assert convs[-1].filters.shape == (32, 3, 7, 7) and convs[-1].stride == (2, 2)
    fc = net.layers[0]
    assert isinstance(fc, Fc) and fc.weights.shape == (256, 128) and fc.bias is None
    assert net.layers[1] == AvgPool((0, 0), (1, 1), (0, 0))
    assert isinstance(net.layers[-4], MaxPool)


def test_reads_dlibs_mmod_detector() -> None:
    from faceindex.vision.models import DLIB_CNN, model_path

    net = read_network(model_path(DLIB_CNN).read_bytes(), MMOD_FACE_DETECTOR)
    assert isinstance(net.loss, LossMmod)
    assert [(w.width, w.height) for w in net.loss.windows] == [(80, 80)]
    assert 0.3 < net.loss.nms_iou < 0.4 and net.loss.nms_covered == 1.0
    convs = [x for x in net.layers if isinstance(x, Conv)]
    assert [c.filters.shape[0] for c in convs] == [1, 45, 45, 45, 32, 32, 16]
    assert [c.stride for c in convs[-3:]] == [(2, 2)] * 3
    assert convs[0].filters.shape == (1, 45, 9, 9) and convs[0].padding == (4, 4)
