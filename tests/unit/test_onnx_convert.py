"""dlib networks -> ONNX: a small network written as dlib writes one, run by onnxruntime
against a numpy transcription of dlib's layer semantics; the conversion cache; the
embedder's edges (the equivalence with dlib itself is tests/integration/test_onnx_equivalence.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import ConfigError, InputError, ModelError
from faceindex.vision.models import DLIB_RESNET
from faceindex.vision.onnx.cache import check_source, load_converted
from faceindex.vision.onnx.convert import INPUT_NAME, to_onnx
from faceindex.vision.onnx.dlib_format import read_network
from faceindex.vision.onnx.networks import RESNET_FACE_DESCRIPTOR
from faceindex.vision.onnx.runtime import open_session, threads_per_worker
from tests.unit.dlib_writer import SPEC, small_network_bytes

pytestmark = pytest.mark.unit

ort = pytest.importorskip("onnxruntime")


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """dlib's con_ (cross-correlation), one sample, (k, rows, cols)."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    o, _, kr, kc = w.shape
    rows = (xp.shape[1] - kr) // stride + 1
    cols = (xp.shape[2] - kc) // stride + 1
    out = np.zeros((o, rows, cols), dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            patch = xp[:, r * stride : r * stride + kr, c * stride : c * stride + kc]
            out[:, r, c] = np.tensordot(w, patch, axes=3) + b
    return out


def dlib_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's tt::add of differently sized tensors: each zero-extended to the larger size."""
    shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape)
    out[tuple(slice(0, s) for s in a.shape)] += a
    out[tuple(slice(0, s) for s in b.shape)] += b
    return out


@pytest.mark.parametrize("stride", [1, 2])
def test_small_network_runs_as_dlib_defines_it(stride: int) -> None:
    data, p = small_network_bytes(np.random.default_rng(1), stride=stride)
    net = read_network(data, SPEC)
    session = open_session(to_onnx(net), threads=1)
    images = np.random.default_rng(2).integers(0, 256, size=(3, 4, 4, 3), dtype=np.uint8)
    got = session.run(None, {INPUT_NAME: images})[0]
    mean = np.array([122.782, 117.001, 104.298], dtype=np.float32)
    for img, out in zip(images, got, strict=True):
        x = ((img.astype(np.float32) - mean) / 256).transpose(2, 0, 1)
        y = conv2d(x, p["filters"], p["bias"], stride, 1 if stride == 1 else 0)
        y = y * p["gamma"][:, None, None] + p["beta"][:, None, None]
        y = np.maximum(dlib_add(x, y), 0)  # add_prev2 onto skip1 (the input), then relu
        assert y.shape == (3, 4, 4)
        np.testing.assert_allclose(out, y.reshape(-1) @ p["weights"], rtol=1e-4, atol=1e-5)


def test_folding_affine_into_conv_changes_nothing_but_rounding() -> None:
    data, _ = small_network_bytes(np.random.default_rng(3), stride=2)
    net = read_network(data, SPEC)
    images = np.random.default_rng(4).integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8)
    folded, plain = (
        open_session(to_onnx(net, fold_affine=f), threads=1).run(None, {INPUT_NAME: images})[0]
        for f in (True, False)
    )
    np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-6)


# -- the cache ----------------------------------------------------------------------------


def test_converts_once_then_loads_verified(tmp_path: Path) -> None:
    seen: list[object] = []
    first = load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, tmp_path, on_network=seen.append)
    assert len(seen) == 1
    graphs = list(tmp_path.glob("*.onnx"))
    assert len(graphs) == 1 and DLIB_RESNET.sha256[:16] in graphs[0].name
    record = json.loads(graphs[0].with_suffix(".json").read_text())
    assert record["source_sha256"] == DLIB_RESNET.sha256
    again = load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, tmp_path, on_network=seen.append)
    assert again == first and len(seen) == 1  # from the cache, not converted again
    assert not list(tmp_path.glob("*.tmp"))


def test_a_tampered_cache_is_converted_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, tmp_path)
    graph = next(tmp_path.glob("*.onnx"))
    graph.write_bytes(good[:-10] + b"0123456789")  # same size, other weights
    seen: list[object] = []
    with caplog.at_level(logging.WARNING):
        got = load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, tmp_path, on_network=seen.append)
    assert got == good and len(seen) == 1
    assert "does not verify" in caplog.text
    # a record that names another source file is not trusted either
    meta = graph.with_suffix(".json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "source_sha256": "0" * 64}))
    seen.clear()
    load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, tmp_path, on_network=seen.append)
    assert len(seen) == 1


def test_an_unwritable_cache_still_gives_the_graph(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data = load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, blocker / "onnx")
    assert data[:2] and len(data) > 20_000_000


def test_a_graph_from_another_source_is_refused() -> None:
    check_source(DLIB_RESNET.sha256, DLIB_RESNET)
    with pytest.raises(ModelError, match="records source"):
        check_source("f" * 64, DLIB_RESNET)
    with pytest.raises(ModelError):
        check_source(None, DLIB_RESNET)


# -- runtime and embedder edges -----------------------------------------------------------


def test_threads_share_the_cores_among_workers() -> None:
    import os

    cores = os.cpu_count() or 1
    assert threads_per_worker(1) == cores
    assert threads_per_worker(cores) == 1
    assert threads_per_worker(cores * 4) == 1
    assert threads_per_worker(3, threads=5) == 5


def test_cuda_without_a_gpu_runtime_is_a_clear_error() -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu with CUDA is installed here")
    data, _ = small_network_bytes(np.random.default_rng(0))
    model = to_onnx(read_network(data, SPEC))
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        open_session(model, threads=1, provider="cuda")
    assert open_session(model, threads=1, provider="auto").get_providers() == [
        "CPUExecutionProvider"
    ]


def test_embedder_edges(tmp_path: Path) -> None:
    from faceindex.vision.onnx.embedder import OnnxDlibEmbedder

    with pytest.raises(ConfigError, match="jitter"):
        OnnxDlibEmbedder(jitters=5, cache_dir=tmp_path)
    emb = OnnxDlibEmbedder(cache_dir=tmp_path)
    assert (emb.dim, emb.metric, emb.name) == (128, "l2", "dlib-resnet-v1+mirror@1")
    assert emb.embed([]).shape == (0, 128)
    with pytest.raises(InputError, match="150, 150, 3"):
        emb.embed([np.zeros((112, 112, 3), dtype=np.uint8)])
    chip = np.random.default_rng(0).integers(0, 256, size=(150, 150, 3), dtype=np.uint8)
    one = emb.embed([chip])
    two = emb.embed([chip, chip[:, ::-1].copy()])
    assert one.shape == (1, 128) and one.dtype == np.float32
    # mirror-averaged: a chip and its mirror image get the same descriptor
    np.testing.assert_allclose(two[0], two[1], atol=1e-6)
    np.testing.assert_allclose(one[0], two[0], atol=1e-6)
    plain = OnnxDlibEmbedder(mirror=False, cache_dir=tmp_path).embed([chip])
    assert np.abs(plain - one).max() > 1e-4


def test_the_runtime_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceindex.config import Settings
    from faceindex.vision.embed import DlibEmbedder, build_embedder
    from faceindex.vision.onnx.embedder import OnnxDlibEmbedder

    assert Settings.load(tmp_path / "home").embedder_runtime == "onnx"
    monkeypatch.setenv("FACEINDEX_EMBEDDER_RUNTIME", "dlib")
    runtime = Settings.load(tmp_path / "home").embedder_runtime
    assert isinstance(build_embedder(runtime), DlibEmbedder)
    onnx = build_embedder("onnx", cache_dir=tmp_path)
    assert isinstance(onnx, OnnxDlibEmbedder)
    assert onnx.name == build_embedder("dlib").name
    with pytest.raises(ConfigError):
        Settings.load(tmp_path / "home", embedder_runtime="tensorflow")


def test_sessions_for_changing_sizes_keep_no_arena() -> None:
    data, _ = small_network_bytes(np.random.default_rng(0))
    model = to_onnx(read_network(data, SPEC))
    assert open_session(model, threads=1).get_session_options().enable_cpu_mem_arena
    opts = open_session(model, threads=3, arena=False).get_session_options()
    assert not opts.enable_cpu_mem_arena
    assert opts.intra_op_num_threads == 3
