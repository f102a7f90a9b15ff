"""A real Milvus server for the index contract tests, named by environment variables.

``FACEINDEX_TEST_MILVUS_URI`` (``milvus://127.0.0.1:19530/faces``, what
``bash scripts/start-milvus.sh`` prints) turns on the ``milvus-server`` backend; each test
gets its own collection, named from its tmp_path so that a fresh interpreter opening the
same path (the restart tests) finds the same one. ``FACEINDEX_TEST_MILVUS_CONTROL`` is the
command that controls that server (``bash scripts/start-milvus.sh``): the server-restart
tests run it with ``--restart`` (a graceful stop) and ``--crash`` (SIGKILL), each of which
starts the server process again on the same data.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

URI_ENV = "FACEINDEX_TEST_MILVUS_URI"
CONTROL_ENV = "FACEINDEX_TEST_MILVUS_CONTROL"
# FLAT: the server's exact kind, so results must equal the oracle's; HNSW is the default
# for milvus:// URLs and is run too, with an ef wide enough to be exact on these galleries
KINDS = {"milvus-server": "index=FLAT", "milvus-server-hnsw": "index=HNSW&ef=512"}


def collection_url(kind: str, path: Path) -> str:
    """The test's collection on the server (valid in any process that has the variable)."""
    base = urlparse(os.environ[URI_ENV])
    name = "t_" + hashlib.sha256(str(path).encode()).hexdigest()[:20]
    return urlunparse(base._replace(path=f"/{name}", query=KINDS[kind]))


def server_uri() -> str:
    """The server's URI, or a skip that says how to get one."""
    uri = os.environ.get(URI_ENV, "")
    if not uri:
        pytest.skip(
            f"Milvus server tests need {URI_ENV} (bash scripts/start-milvus.sh prints one; "
            "make test-milvus-server runs them)"
        )
    pytest.importorskip("pymilvus", reason="needs pymilvus: pip install 'faceindex[milvus]'")
    return uri


def drop(url: str) -> None:
    """Drop a test's collection (the server outlives the test)."""
    from pymilvus import MilvusClient

    parsed = urlparse(url)
    client = MilvusClient(uri=f"http://{parsed.hostname}:{parsed.port or 19530}")
    try:
        client.drop_collection(parsed.path.strip("/"))
    finally:
        client.close()


def restart_server(how: str) -> None:
    """Restart the Milvus server process (``restart`` or ``crash``; the data stays), or skip
    saying how to."""
    command = os.environ.get(CONTROL_ENV, "")
    if not command:
        pytest.skip(
            f"restarting the server needs {CONTROL_ENV}, e.g. 'bash scripts/start-milvus.sh'"
        )
    done = subprocess.run(
        f"{command} --{how}", shell=True, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{command} --{how} failed: {done.stderr[-2000:]}"
