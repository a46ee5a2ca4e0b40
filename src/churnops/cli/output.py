"""Shared CLI plumbing: JSON output, errors mapped to exit codes, rich progress bars.

Every command takes ``--json``; with it, stdout holds exactly one JSON object (the result,
or ``{"error": ..., "message": ...}``) and human chatter goes to stderr.

Everything printed — JSON, messages, errors, internal errors quoting a driver — passes
through :func:`churnops.redact.redact` here, so a URL's password never reaches a terminal
or a CI log whichever command printed it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from churnops.errors import ChurnopsError
from churnops.redact import redact


class RedactingConsole(Console):
    """A rich console whose printed strings have URL passwords masked."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print like :meth:`rich.console.Console.print`, strings redacted first."""
        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = RedactingConsole(stderr=True)
out = RedactingConsole()

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_command(text: str) -> None:
    """Print text people copy — a command, a key, a URL — unwrapped and without markup.

    Rich wraps at the terminal's width by inserting line breaks: a curl line pasted from
    an 80-column terminal stopped after ``-H``. A soft wrap leaves every line whole (the
    terminal folds it on screen only), and markup is off so brackets in JSON stay text.
    """
    out.print(text, soft_wrap=True, markup=False, highlight=False)


def print_json(payload: Any) -> None:
    """Write ``payload`` as one JSON document on stdout."""
    sys.stdout.write(redact(json.dumps(payload, default=_default, indent=2)) + "\n")
    sys.stdout.flush()


def handle_errors(func: F) -> F:
    """Turn churnops errors into a clear message and the error's exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except ChurnopsError as exc:
            _report(exc.to_dict(), exc.message, as_json)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            if os.environ.get("CHURNOPS_DEBUG"):
                raise
            message = (
                f"Internal error ({type(exc).__name__}): {exc}. Set CHURNOPS_DEBUG=1 to see where."
            )
            _report({"error": "InternalError", "message": str(exc)}, message, as_json)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _report(payload: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        print_json(payload)
    # Messages quote data and commands (``churnops[spark]``, ``[0, 1]``): never markup.
    console.print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True
    )


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Yield a ``progress(task, done, total)`` callback drawing one rich bar per task."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    ) as bars:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done, total=total)

        yield update
