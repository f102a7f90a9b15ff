"""A real two-node Ray cluster on this machine for tests: ``ray start --head`` and a second
``ray start --address=...`` node, one CPU each, stopped by the fixture that started it.

Each node runs ``ray start --block`` in its own process group, so stopping it ends exactly
the processes it started (its raylet, object store, workers), never another Ray. Ray turns
``--node-ip-address=127.0.0.1`` into this machine's routable address and its gRPC servers
listen on every interface (Ray 2.40 has no setting for that); ports are free ones picked
here, and everything stops with the fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.live import free_port
from tests.rayhelp import REPO

RAY_BIN = Path(sys.executable).with_name("ray")
START_TIMEOUT_S = 180.0


@dataclass
class RayCluster:
    address: str  # host:port of the head's GCS, as `ray.init` and `--address` take it
    nodes: list[subprocess.Popen[bytes]]
    env: dict[str, str]  # what the drivers need to import the same faceindex as the nodes

    def analyst_pids(self) -> list[int]:
        """Processes of this cluster's ingest actors (their title is ray::Analyst...)."""
        ours = {p.pid for p in self.nodes}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::Analyst") and _descends(int(entry.name), ours):
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        for proc in self.nodes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` stops its children
        for proc in self.nodes:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _descends(pid: int, ancestors: set[int]) -> bool:
    while pid > 1:
        if pid in ancestors:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    ports = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ]
    cmd = [str(RAY_BIN), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    cmd += ["--object-store-memory=80000000", "--disable-usage-stats"]
    cmd += [f"{p}={free_port()}" for p in ports]
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd + args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_nodes(
    address: str, env: dict[str, str], count: int, nodes: list[subprocess.Popen[bytes]]
) -> None:
    probe = (
        "import ray, sys, time\n"
        f"ray.init(address={address!r}, logging_level='ERROR')\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count}: time.sleep(0.5)\n"
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in nodes):
            raise RuntimeError("a Ray node exited while starting (see its log)")
        try:
            subprocess.run(
                [sys.executable, "-c", probe], env=env, timeout=60, check=True, capture_output=True
            )
            return
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes")


def start_cluster(tmp: Path) -> Iterator[RayCluster]:
    """Yields a running two-node cluster; stops both nodes after."""
    paths = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    head_args = ["--head", f"--port={port}", "--include-dashboard=false"]
    # Ray's socket paths must stay short (108 bytes): not under pytest's long tmp paths.
    session = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    head_args += [f"--ray-client-server-port={free_port()}", f"--temp-dir={session}"]
    cluster = RayCluster(address, [], env)
    try:
        cluster.nodes.append(_node(head_args, env, tmp / "head.log"))
        _wait_nodes(address, env, 1, cluster.nodes)
        cluster.nodes.append(_node([f"--address={address}"], env, tmp / "node2.log"))
        _wait_nodes(address, env, 2, cluster.nodes)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(session, ignore_errors=True)
