"""Batch scoring: every customer of a table scored into ``churn_scores`` for a date.

The names below load on first use (PEP 562): ``churnops report high-risk`` only reads the
store through :mod:`churnops.batch.report`, and importing the package must not pull in
the scoring path (scikit-learn, numba, LightGBM) that :func:`score` needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnops.batch.job import score
    from churnops.batch.report import high_risk
    from churnops.batch.runs import get_run, list_runs

_HOMES = {
    "score": "churnops.batch.job",
    "high_risk": "churnops.batch.report",
    "get_run": "churnops.batch.runs",
    "list_runs": "churnops.batch.runs",
}

__all__ = ["get_run", "high_risk", "list_runs", "score"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
