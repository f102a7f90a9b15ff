"""Options and helpers shared by the command groups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from faceindex.cli.errors import exit_code
from faceindex.config import Settings
from faceindex.errors import FaceIndexError

__all__ = ["HomeOpt", "console", "err_console", "handle_errors", "open_engine", "settings_for"]

console = Console()
err_console = Console(stderr=True)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", help="engine home (default: $FACEINDEX_HOME or ~/.faceindex)", show_default=False
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn faceindex errors into a one-line message and the mapped exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FaceIndexError as exc:
            # escaped: a message naming an extra ('faceindex[ray]') is not rich markup
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]


def settings_for(home: Path | None, **overrides: Any) -> Settings:
    return Settings.load(home, **{k: v for k, v in overrides.items() if v is not None})


@contextmanager
def open_engine(home: Path | None, *, create: bool = False, **overrides: Any) -> Iterator[Any]:
    from faceindex.engine import Engine

    with Engine.open(settings_for(home, **overrides), create=create) as engine:
        yield engine
