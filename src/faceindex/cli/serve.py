"""faceindex serve: the HTTP API and web page under uvicorn, in one process or several.

With ``--workers N`` uvicorn starts N server processes behind the one port (the kernel
spreads connections over them); each opens its own engine over the shared home and sees
every other writer (catalog generations, index epochs: ``index/synced.py``), and result
links live in the governance database, so any process answers any link. Rate limits are
per process unless ``rate_limit_scope = "home"``; the engine-slot queue is per process
(docs/SCALING.md, "Several server processes").
"""

from __future__ import annotations

import os

import typer

from faceindex.cli.common import HomeOpt, console, handle_errors, settings_for

__all__ = ["serve"]


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind (keep it local behind TLS)"),
    port: int = typer.Option(8000, min=1, max=65535),
    home: HomeOpt = None,
    log_level: str = typer.Option("info", help="uvicorn log level"),
    workers: int = typer.Option(
        1, min=1, max=64, help="server processes behind the port (each: its own engine)"
    ),
) -> None:
    """Serve the API (/v1, /docs) and the web page (/) from one engine home."""
    try:
        import uvicorn

        from faceindex.server.app import create_app
    except ImportError as exc:
        from faceindex.errors import MissingDependency

        raise MissingDependency("the server needs: pip install 'faceindex[server]'") from exc
    settings = settings_for(home)
    if workers == 1:
        app = create_app(settings, warm=True)
        console.print(f"faceindex serving on http://{host}:{port}/ (API docs at /docs)")
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=5)
        return
    from faceindex.engine import Engine

    Engine.open(settings).close()  # a missing or broken home fails here, once, not N times
    analysis = workers * settings.server_threads if settings.server_analysis == "process" else 0
    console.print(
        f"faceindex serving on http://{host}:{port}/ with {workers} processes "
        f"({settings.server_threads} engine slots each; {analysis} analysis workers in all, "
        f"each restarted past {settings.analysis_worker_max_rss_mb} MB; rate limits per "
        f"{settings.rate_limit_scope})"
    )
    _warn_memory(analysis * settings.analysis_worker_max_rss_mb)
    os.environ["FACEINDEX_HOME"] = str(settings.home)  # the processes' factory reads it
    uvicorn.run(
        "faceindex.server.app:create_app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=5,
    )


def _warn_memory(analysis_mb: int) -> None:
    """Say so when the analysis workers may, at their restart limit, outgrow the RAM."""
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (OSError, ValueError):
        return
    if analysis_mb > 0.8 * ram_mb:
        console.print(
            f"[yellow]warning[/yellow]: the analysis workers may hold up to {analysis_mb} MB "
            f"before they restart, of {ram_mb} MB of RAM: lower --workers, server_threads or "
            "analysis_worker_max_rss_mb (docs/SCALING.md, 'Several server processes')",
            highlight=False,
        )
