"""One row's margin, for any family or a blend of families, in one compiled call.

Why: entering numba costs about 0.1 µs for each array a call passes, plus the call
itself, and one online request scores one row. A blend of four families that called each
member's kernel from Python paid four such entries, a Python loop and a conversion of
the row for each — more than the arithmetic of all four. So every family's one-row
parameters are two flat arrays, ``ints`` (int64) and ``reals`` (float64), and
:func:`margin` reads them for the family named by its code; a blend's arrays hold its
weights and its members' arrays, and the blend is one call.

The layouts (``w`` = the row's width):

- logistic: ``reals`` = intercept, mean (w), scale (w), coef (w); no ``ints``.
- spline: ``ints`` = S, columns (S), bounds (S + 1); ``reals`` = intercept, coef (w),
  knots, values (both ``bounds[S]`` long).
- LightGBM: ``reals`` = the sigmoid scale, then :class:`~churnops.scoring.trees.CompiledTrees`'
  ``reals``; its ``ints`` as they are.
- XGBoost and CatBoost: their compiled walks' ``ints`` and ``reals``
  (:mod:`churnops.scoring.xgboost_trees`, :mod:`churnops.scoring.catboost_trees`).
- blend: ``ints`` = M, codes (M), where each member's ints start (M + 1), where its
  reals start (M + 1), then the members' ints; ``reals`` = intercept, weights (M), then
  the members' reals.

Exactness: each family's part is the arithmetic its batch kernel does for that row — the
same function where the batch calls one per row, the same operations in the same order
where it walks several rows at once (LightGBM's plain walk) — and the blend adds
``weight * margin`` to the intercept member by member, as the batch's
``out += weight * margins`` does, so one row is bit for bit the batch's number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from churnops.scoring import catboost_trees, trees, xgboost_trees
from churnops.scoring.calibration import interp_one

LOGISTIC, SPLINE, LIGHTGBM, XGBOOST, CATBOOST, ENSEMBLE = range(6)


@njit(cache=True, nogil=True)
def linear_one(
    x: Any, mean: Any, scale: Any, coef: Any, intercept: float
) -> float:  # pragma: no cover - compiled
    """StandardScaler then the linear model for one row, summed left to right.

    The batch kernel calls this for each row: the same operations in the same order (a
    BLAS dot product blocks differently for one row than for many).
    """
    z = intercept
    for j in range(x.shape[0]):
        z += ((x[j] - mean[j]) / scale[j]) * coef[j]
    return z


@njit(cache=True, nogil=True)
def spline_one(
    x: Any, coef: Any, columns: Any, bounds: Any, knots: Any, values: Any, intercept: float
) -> float:  # pragma: no cover - compiled
    """The linear part, then each spline column's piecewise-linear value, for one row.

    Spline ``s`` reads encoded column ``columns[s]`` through its knots and values
    ``knots[bounds[s]:bounds[s + 1]]`` (increasing, at least two), constant beyond the
    end knots (``np.interp``). The batch kernel calls this for each row.
    """
    z = intercept
    for j in range(x.shape[0]):
        z += x[j] * coef[j]
    for s in range(columns.shape[0]):
        lo, hi = bounds[s], bounds[s + 1]
        z += interp_one(x[columns[s]], knots[lo:hi], values[lo:hi])
    return z


@njit(cache=True, nogil=True)
def _member(code: int, x: Any, ints: Any, reals: Any) -> float:  # pragma: no cover - compiled
    """One single family's margin (the layouts in the module docstring)."""
    w = x.shape[0]
    if code == LOGISTIC:
        return linear_one(
            x, reals[1 : 1 + w], reals[1 + w : 1 + 2 * w], reals[1 + 2 * w :], reals[0]
        )
    if code == SPLINE:
        s = ints[0]
        k = (reals.shape[0] - 1 - w) // 2
        return spline_one(
            x,
            reals[1 : 1 + w],
            ints[1 : 1 + s],
            ints[1 + s :],
            reals[1 + w : 1 + w + k],
            reals[1 + w + k :],
            reals[0],
        )
    if code == LIGHTGBM:
        return reals[0] * trees.raw_packed(x, ints, reals[1:])
    if code == XGBOOST:
        return xgboost_trees.raw_packed(x, ints, reals)
    return catboost_trees.raw_packed(x, ints, reals)


@njit(cache=True, nogil=True)
def margin(code: int, x: Any, ints: Any, reals: Any) -> float:  # pragma: no cover - compiled
    """One row's margin (log-odds) for the family ``code`` with its packed arrays."""
    if code != ENSEMBLE:
        return _member(code, x, ints, reals)
    m = ints[0]
    starts, reals_at = ints[1 + m : 2 + 2 * m], ints[2 + 2 * m : 3 + 3 * m]
    ints0, reals0 = 3 + 3 * m, 1 + m
    total = reals[0]
    for k in range(m):
        part = _member(
            ints[1 + k],
            x,
            ints[ints0 + starts[k] : ints0 + starts[k + 1]],
            reals[reals0 + reals_at[k] : reals0 + reals_at[k + 1]],
        )
        total += reals[1 + k] * part
    return total


def pack_blend(
    members: list[tuple[int, np.ndarray, np.ndarray]], weights: list[float], intercept: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return a blend's ``ints`` and ``reals`` from its members' (code, ints, reals)."""
    int_sizes = [len(ints) for _, ints, _ in members]
    real_sizes = [len(reals) for _, _, reals in members]
    ints = np.concatenate(
        [
            [len(members)],
            [code for code, _, _ in members],
            np.cumsum([0, *int_sizes]),
            np.cumsum([0, *real_sizes]),
            *(ints for _, ints, _ in members),
        ]
    ).astype(np.int64)
    reals = np.concatenate([[intercept], weights, *(reals for _, _, reals in members)])
    return ints, reals.astype(np.float64)
