"""A real uvicorn server on 127.0.0.1 for the tests that drive one over HTTP."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unready(proc: subprocess.Popen[bytes], url: str, seconds: float) -> str | None:
    """Wait for ``faceindex serve`` in ``proc`` to answer ``url``/v1/health with 200: None
    once it does, else why not (it exited, with its output where it was piped, or it did
    not answer within ``seconds``). The caller stops the process and fails the test."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            return f"faceindex serve exited with {proc.returncode}: {out}"
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return f"faceindex serve did not answer within {seconds:g} s"


@contextmanager
def serve_in_thread(app: Any, *, join_timeout: float = 20) -> Iterator[str]:
    """Serve ``app`` on a free local port in a daemon thread; yields its base URL and stops
    the server on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        pytest.fail("uvicorn did not start within 20 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=join_timeout)
