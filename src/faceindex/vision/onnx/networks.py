"""The C++ types of the two networks face_recognition_models ships, as reader specs.

dlib's files do not record which tag a skip or an add_prev refers to (the C++ type does), so
these are transcribed from the type definitions in dlib's examples and Python bindings
(dnn_face_recognition_ex.cpp, cnn_face_detector.cpp). Outermost layer first, as dlib writes
a type; the loss and the input layer are not listed.
"""

from __future__ import annotations

from faceindex.vision.onnx.dlib_format import SpecEntry

__all__ = ["MMOD_FACE_DETECTOR", "RESNET_FACE_DESCRIPTOR"]


def _block() -> list[SpecEntry]:
    # BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, SUBNET>>>>>
    return ["affine", "con", "relu", "affine", "con"]


def _ares() -> list[SpecEntry]:
    # relu<add_prev1<block<tag1<SUBNET>>>>
    return ["relu", ("add_prev", 1), *_block(), ("tag", 1)]


def _ares_down() -> list[SpecEntry]:
    # relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<tag1<SUBNET>>>>>>>
    return ["relu", ("add_prev", 2), "avg_pool", ("skip", 1), ("tag", 2), *_block(), ("tag", 1)]


def _resnet() -> list[SpecEntry]:
    levels = (
        _ares_down()  # alevel0: 256
        + _ares() * 2
        + _ares_down()  # alevel1: 256
        + _ares() * 2
        + _ares_down()  # alevel2: 128
        + _ares() * 3
        + _ares_down()  # alevel3: 64
        + _ares() * 3  # alevel4: 32
    )
    # loss_metric<fc_no_bias<128, avg_pool_everything<levels<
    #     max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>
    return ["fc", "avg_pool", *levels, "max_pool", "relu", "affine", "con"]


def _mmod() -> list[SpecEntry]:
    rcon5 = ["relu", "affine", "con"]  # relu<affine<con5<45, SUBNET>>>
    downsampler = ["relu", "affine", "con"] * 3  # three relu<affine<con5d<...>>>
    # loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<...>>>>>>>
    return ["con", *(rcon5 * 3), *downsampler]


RESNET_FACE_DESCRIPTOR: tuple[SpecEntry, ...] = tuple(_resnet())
MMOD_FACE_DETECTOR: tuple[SpecEntry, ...] = tuple(_mmod())
