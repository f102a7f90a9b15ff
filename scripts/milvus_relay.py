"""Relay 127.0.0.1:PORT on this host to a Milvus server inside its own network namespace.

Milvus 2.3's gRPC servers listen on every interface (``:19530``, no setting narrows it), so
scripts/start-milvus.sh runs the server in a private network namespace that has only a
loopback device, and this relay is the one way in: it binds its listening socket in the
host's namespace first, then joins the server's namespace (setns), so every connection it
opens afterwards reaches the server's loopback. Standard library only (it runs from the
server's own venv); needs the right to join a namespace (root).

    python milvus_relay.py --listen-port 19530 --netns /proc/PID/ns/net --target-port 19530
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
CHUNK = 1 << 16


def join_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def serve(listener: socket.socket, target_port: int) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--netns", required=True, help="e.g. /proc/PID/ns/net")
    ap.add_argument("--target-port", type=int, default=19530)
    args = ap.parse_args()
    listener = socket.create_server(("127.0.0.1", args.listen_port))
    join_netns(args.netns)  # the listener stays in the host's namespace; new sockets do not
    serve(listener, args.target_port)


if __name__ == "__main__":
    cli()
