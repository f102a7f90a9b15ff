"""ONNX Runtime sessions for a pack's networks (imported only when such a pack is used)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceindex.errors import MissingDependency, ModelError

__all__ = ["open_session"]


def open_session(path: Path, threads: int = 0) -> Any:
    """A CPU inference session for the ONNX graph at ``path``; ``threads`` 0 lets ORT choose."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependency(
            "ONNX model packs need onnxruntime: pip install onnxruntime"
        ) from exc
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own unrelated exception classes
        raise ModelError(f"cannot load the ONNX model {path}: {exc}") from exc
