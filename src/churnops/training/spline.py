"""The spline family: a logistic model on degree-1 splines of every number.

Why: every other family was within 0.004 ROC-AUC of the others on the demo table and
their blend had stopped gaining; the plain logistic model is linear in tenure and
charges, the trees are step functions of them. A piecewise-linear function per number
(knots at training quantiles) bends where churn does (the first months of tenure) and
still extrapolates flat, so it errs differently and earns blend weight (bench/README.md,
``bench/quality.py``).

The basis is degree-1 B-splines ("hat" functions: 1 at their knot, falling linearly to
0 at the neighbours, constant beyond the end knots), the same as scikit-learn's
``SplineTransformer(degree=1, knots="quantile", extrapolation="constant")`` except that
repeated quantiles (a column of few values: tenure in months, a 0/1 flag) collapse into
one knot instead of failing. A fitted model is a sum of per-column piecewise-linear
functions, which is what :class:`~churnops.scoring.estimators.SplineEstimator` stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from churnops.scoring.catboost_trees import CodeLayout
from churnops.scoring.estimators import SplineEstimator

if TYPE_CHECKING:
    import optuna


class HatBasis(TransformerMixin, BaseEstimator):
    """Replace each of ``columns`` by its hat functions at ``n_knots`` training quantiles.

    Output: the other columns as they are, then each spline column's basis. A column
    with a single value gets no spline (it passes through, as the one-hot columns do).
    """

    def __init__(self, columns: tuple[int, ...] = (), n_knots: int = 5) -> None:
        self.columns = columns
        self.n_knots = n_knots

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> HatBasis:
        """Place the knots at the training quantiles of each spline column."""
        quantiles = np.linspace(0.0, 1.0, self.n_knots)
        knots = {c: np.unique(np.quantile(X[:, c], quantiles)) for c in self.columns}
        self.knots_ = {c: k for c, k in knots.items() if len(k) > 1}
        self.passthrough_ = np.array(
            [j for j in range(X.shape[1]) if j not in self.knots_], dtype=np.int64
        )
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the passthrough columns, then each spline column's hat functions."""
        blocks = [X[:, self.passthrough_]]
        for column, knots in self.knots_.items():
            unit = np.eye(len(knots))
            blocks.append(np.column_stack([np.interp(X[:, column], knots, u) for u in unit]))
        return np.hstack(blocks)


def space(trial: optuna.Trial) -> dict[str, Any]:
    """Knots per number and the inverse L2 strength."""
    return {
        "n_knots": trial.suggest_int("n_knots", 3, 12),
        "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
    }


def build(params: dict[str, Any], seed: int, layout: CodeLayout) -> Any:
    """Hat basis of every column outside a one-hot block, StandardScaler, LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    basis = HatBasis(tuple(int(c) for c in layout.dense), params["n_knots"])
    model = LogisticRegression(C=params["C"], max_iter=5000, random_state=seed)
    return make_pipeline(basis, StandardScaler(), model)


def to_native(model: Any) -> SplineEstimator:
    """Fold the scaler into the coefficients: each hat's weight is its knot's value.

    The margin is ``b + Σ w_k (u_k - m_k) / s_k`` over the basis outputs ``u``. A hat is
    1 at its knot and 0 at the others, so ``w_k / s_k`` is the column's function at that
    knot, and the constants join the intercept. The spline's training mean (its SHAP
    baseline) is ``Σ value_k · m_k``, ``m_k`` being each hat's training mean.
    """
    basis, scaler, logreg = model[0], model[1], model[-1]
    weights = logreg.coef_[0] / scaler.scale_
    means = scaler.mean_
    n_pass = len(basis.passthrough_)
    coef = np.zeros(basis.n_features_in_)
    mean = np.zeros(basis.n_features_in_)
    coef[basis.passthrough_] = weights[:n_pass]
    mean[basis.passthrough_] = means[:n_pass]
    knots, values, offsets = [], [], []
    start = n_pass
    for column_knots in basis.knots_.values():
        block = slice(start, start + len(column_knots))
        knots.append(tuple(float(k) for k in column_knots))
        values.append(tuple(float(v) for v in weights[block]))
        offsets.append(float(weights[block] @ means[block]))
        start = block.stop
    return SplineEstimator(
        tuple(float(c) for c in coef),
        tuple(float(m) for m in mean),
        tuple(int(c) for c in basis.knots_),
        tuple(knots),
        tuple(values),
        tuple(offsets),
        float(logreg.intercept_[0] - weights @ means),
    )
