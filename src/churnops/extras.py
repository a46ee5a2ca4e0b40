"""Optional engines: a command that needs an extra that is not installed says which one.

PySpark and Dagster are extras (``churnops[spark]``, ``churnops[dagster]``) so the core
install — demo, training, serving, pandas batch scoring — does not carry them. Code that
needs one calls :func:`require` before importing it, so a missing extra is a one-line
message and exit code 1, not an ``ImportError`` traceback from the middle of a job.
"""

from __future__ import annotations

import importlib.util

from churnops.errors import MissingExtraError


def require(module: str, extra: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` when ``module`` cannot be imported.

    Only looks the module up (no import), so checking costs nothing when it is installed
    and the engine is still imported where it is used.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or sys.modules[name] = None
        found = False
    if not found:
        raise MissingExtraError(
            f"This needs {module}, which is in the optional extra {extra!r}: install it with "
            f"`pip install 'churnops[{extra}]'` (or `uv sync --extra {extra}` in a checkout).",
            details={"module": module, "extra": extra},
        )
