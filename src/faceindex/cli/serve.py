"""faceindex serve: the HTTP API and web page under uvicorn."""

from __future__ import annotations

import typer

from faceindex.cli.common import HomeOpt, console, handle_errors, settings_for

__all__ = ["serve"]


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind (keep it local behind TLS)"),
    port: int = typer.Option(8000, min=1, max=65535),
    home: HomeOpt = None,
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the API (/v1, /docs) and the web page (/) from one engine home."""
    try:
        import uvicorn

        from faceindex.server.app import create_app
    except ImportError as exc:
        from faceindex.errors import MissingDependency

        raise MissingDependency("the server needs: pip install 'faceindex[server]'") from exc
    app = create_app(settings_for(home))
    console.print(f"faceindex serving on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=5)
