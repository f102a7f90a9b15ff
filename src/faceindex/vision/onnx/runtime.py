"""ONNX Runtime sessions: which execution provider, how many threads.

Ingest runs one session per worker process, so each gets ``cores / workers`` intra-op
threads (workers x threads = cores) and no spinning thread pool: spinning workers would
steal each other's cores.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from faceindex.errors import ConfigError, MissingDependency, ModelError

__all__ = ["Provider", "open_session", "threads_per_worker"]

log = logging.getLogger(__name__)

Provider = Literal["cpu", "cuda", "auto"]


def threads_per_worker(workers: int, threads: int = 0) -> int:
    """``threads`` if set, else this machine's cores shared evenly among ``workers``."""
    if threads > 0:
        return threads
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _providers(ort: Any, provider: Provider) -> list[str]:
    available = set(ort.get_available_providers())
    has_cuda = "CUDAExecutionProvider" in available
    if provider == "cuda" and not has_cuda:
        raise ConfigError(
            "onnx_provider=cuda needs onnxruntime-gpu and a CUDA GPU "
            f"(available providers: {sorted(available)}); pip install onnxruntime-gpu"
        )
    if provider in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(
    model: bytes,
    *,
    threads: int,
    provider: Provider = "cpu",
    arena: bool = True,
    name: str = "the ONNX model",
) -> Any:
    """An ``onnxruntime.InferenceSession`` for a serialised model (dlib's converted networks,
    or a model pack's graphs); a graph ORT cannot load is a :class:`ModelError` naming it.

    ``arena=False`` for inputs whose size changes call to call (the CNN detector's image
    pyramids): ORT's CPU arena keeps every block it ever grew to, which took a worker from
    1.2 GB to 2.0 GB over three 1600x1200 photos; without it the peak stays at 1.2 GB, as fast.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependency(
            "the ONNX runtime is not installed: pip install onnxruntime "
            "(or set embedder_runtime=dlib)"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not logging
    providers = _providers(ort, provider)  # a ConfigError of its own when it cannot be had
    try:
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # ORT raises its own unrelated exception classes
        raise ModelError(f"cannot load {name}: {exc}") from exc
    log.debug("onnxruntime session: %s, %d threads", session.get_providers(), threads)
    return session
