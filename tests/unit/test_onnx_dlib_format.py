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
from tests.unit.dlib_writer import SPEC, enc_float, enc_int, enc_tensor, small_network_bytes

pytestmark = pytest.mark.unit


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
