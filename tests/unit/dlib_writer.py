"""A writer of dlib's serialisation (after dlib/serialize.h and dlib/dnn/*.h), for tests:
it builds small networks byte for byte the way dlib writes them."""

from __future__ import annotations

import math

import numpy as np


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


# -- a small network, written as dlib writes one ------------------------------------------

# loss_metric<fc<2, relu<add_prev1<skip1<tag2<affine(bn)<con<2,3,3,1,1,tag1<
#     input_rgb_image_sized<4>>>>>>>>>>
SPEC = ["fc", "relu", ("add_prev", 2), ("skip", 1), ("tag", 2), "affine", "con", ("tag", 1)]


def small_network_bytes(
    rng: np.random.Generator, *, stride: int = 1
) -> tuple[bytes, dict[str, np.ndarray]]:
    """loss_metric<fc<2, relu<add_prev2<skip1<tag2<bn<con<2,3,3,s,s, tag1<input 4x4>>>>>>>>>

    With stride 1 (padding 1) the con keeps 4x4; with stride 2 (padding 0) it gives 1x1,
    so the add zero-extends it to the skipped input's 4x4 (and 2 channels to 3 either way).
    """
    pad = 1 if stride == 1 else 0
    filters = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(size=2).astype(np.float32)
    gamma, beta = np.array([2.0, 0.5], np.float32), np.array([0.1, -0.2], np.float32)
    means, variances = np.array([0.3, -0.1], np.float32), np.array([4.0, 0.25], np.float32)
    weights = rng.normal(size=(48, 2)).astype(np.float32)
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
        + enc_int(48)
        + enc_tensor(weights.reshape(-1, 1, 1, 1))
        + enc_alias(48, 2, 1, 1)
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
        + layer_trailer(con_record(filters, bias, stride, pad))
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
