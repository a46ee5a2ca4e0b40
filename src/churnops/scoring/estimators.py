"""Native estimators: each model family as data in its own format, with its exact arithmetic.

Why not the fitted scikit-learn objects: a pickled estimator is code (unpickling runs
whatever it names), breaks when a class moves, and drags scikit-learn into every serving
process. Each family here holds only what predicts — LightGBM's model text, XGBoost's
booster (UBJSON), the logistic and spline models' coefficients (and knots) as JSON
numbers — and loads with the family's own library at most (never scikit-learn, SciPy or
``churnops.training``).

Every family computes the same three things:

- ``margins(X)``: the log-odds, float64. Probabilities are ``expit(margins)`` in every
  family, so the probability arithmetic is one function (:func:`calibration.expit`).
- ``margin_one(row)``: the same margin for one row, bit for bit the batch's number (the
  online API scores one row; batch jobs score millions; they must agree).
- ``contributions(X)``: exact SHAP values in log-odds, ``(n, width + 1)`` with the bias
  last — TreeSHAP from the boosters' own ``pred_contrib``, linear SHAP relative to the
  training mean for the logistic and spline models — so reasons need no explainer object.

LightGBM margins come from the compiled flat-array walk (:mod:`churnops.scoring.trees`)
when training found it equal to LightGBM on probe rows, so scoring imports no
``lightgbm`` at all; contributions (and unsupported models) load the booster on demand.
CatBoost works the same way (:mod:`churnops.scoring.catboost_trees`). An ensemble is a
weighted sum of other families' margins, so it is all three of the above by linearity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numba import njit

from churnops.scoring import lightgbm_c, one_row
from churnops.scoring.calibration import expit
from churnops.scoring.catboost_trees import (
    CodeLayout,
    ObliviousTrees,
    load_catboost,
    parse_catboost,
)
from churnops.scoring.jsonfile import read_object
from churnops.scoring.one_row import linear_one, spline_one
from churnops.scoring.trees import CompiledTrees, binary_sigmoid, parse_lightgbm
from churnops.scoring.xgboost_trees import CompiledXGBoost, parse_xgboost

META_FILE = "estimator.json"


class Estimator(Protocol):
    """What a native estimator offers the scoring model."""

    family: ClassVar[str]
    width: int

    def margins(self, X: np.ndarray) -> np.ndarray: ...

    def margin_one(self, row: Sequence[float]) -> float: ...

    def probabilities(self, X: np.ndarray) -> np.ndarray: ...

    def contributions(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> list[str]: ...


def _write_meta(folder: Path, meta: dict[str, Any]) -> str:
    (folder / META_FILE).write_text(json.dumps(meta, allow_nan=False, sort_keys=True))
    return META_FILE


def _read_meta(folder: Path, family: str) -> dict[str, Any]:
    meta = read_object(folder / META_FILE)
    if meta.get("family") != family:
        raise ValueError(f"{META_FILE} describes family {meta.get('family')!r}, not {family!r}")
    return meta


def _row(row: Sequence[float], width: int) -> np.ndarray:
    x = np.asarray(row, dtype=np.float64)
    if x.shape != (width,):
        raise ValueError(f"expected a row of {width} values, got shape {x.shape}")
    return x


def _matrix(X: np.ndarray, width: int) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != width:
        raise ValueError(f"expected an (n, {width}) matrix, got shape {X.shape}")
    return X


# ----------------------------------------------------------------------------- logistic


@njit(cache=True, nogil=True)
def _linear_margins(
    X: Any, mean: Any, scale: Any, coef: Any, intercept: float, out: Any
) -> None:  # pragma: no cover - compiled
    for i in range(X.shape[0]):
        out[i] = linear_one(X[i], mean, scale, coef, intercept)


class _FromMargins:
    """What every family derives from its batch margins: probabilities, one row's margin.

    ``packed`` is the family's code and one-row arrays for :func:`one_row.margin`, or None
    when its arithmetic is not compiled (the family's own library predicts).
    """

    width: int
    packed: tuple[int, np.ndarray, np.ndarray] | None = None

    def margins(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - each family's own
        raise NotImplementedError

    def margin_one(self, row: Sequence[float]) -> float:
        """Return the log-odds of one encoded row: bit for bit its batch number.

        The compiled one-row kernel when there is one, else the batch path on one row.
        """
        x = _row(row, self.width)
        if self.packed is None:
            return float(self.margins(x.reshape(1, -1))[0])
        code, ints, reals = self.packed
        return float(one_row.margin(code, x, ints, reals))

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Return churn probabilities of an encoded matrix."""
        return expit(self.margins(X))


@dataclass
class LogisticEstimator(_FromMargins):
    """StandardScaler + binary LogisticRegression as four JSON arrays of floats."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    family: ClassVar[str] = "logistic"
    width: int = field(init=False)

    def __post_init__(self) -> None:
        if not len(self.mean) == len(self.scale) == len(self.coef):
            raise ValueError("logistic mean, scale and coef differ in length")
        self.width = len(self.coef)
        self._mean = np.asarray(self.mean, dtype=np.float64)
        self._scale = np.asarray(self.scale, dtype=np.float64)
        self._coef = np.asarray(self.coef, dtype=np.float64)
        reals = np.concatenate([[self.intercept], self._mean, self._scale, self._coef])
        self.packed = (one_row.LOGISTIC, np.zeros(0, dtype=np.int64), reals)

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix."""
        X = _matrix(X, self.width)
        out = np.empty(X.shape[0])
        _linear_margins(X, self._mean, self._scale, self._coef, self.intercept, out)
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Linear SHAP relative to the training mean: the bias is the mean row's margin."""
        X = _matrix(X, self.width)
        contrib = (X - self._mean) * (self._coef / self._scale)
        return np.hstack([contrib, np.full((X.shape[0], 1), self.intercept)])

    def save(self, folder: Path) -> list[str]:
        """Write ``estimator.json`` (floats as JSON numbers: ``repr`` round-trips exactly)."""
        meta = {
            "family": self.family,
            "width": self.width,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
        }
        return [_write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> LogisticEstimator:
        """Read the model written by :meth:`save`."""
        meta = _read_meta(folder, cls.family)
        model = cls(
            tuple(map(float, meta["mean"])),
            tuple(map(float, meta["scale"])),
            tuple(map(float, meta["coef"])),
            float(meta["intercept"]),
        )
        if model.width != meta["width"]:
            raise ValueError(f"{META_FILE} says width {meta['width']}, coef has {model.width}")
        return model


# ----------------------------------------------------------------------------- spline


@njit(cache=True, nogil=True)
def _spline_margins(
    X: Any,
    coef: Any,
    columns: Any,
    bounds: Any,
    knots: Any,
    values: Any,
    intercept: float,
    out: Any,
) -> None:  # pragma: no cover - compiled
    """The linear part, then each spline column's piecewise-linear value, row by row.

    Spline ``s`` reads encoded column ``columns[s]`` through its knots and values
    ``knots[bounds[s]:bounds[s + 1]]`` (increasing, at least two), constant beyond the
    end knots (``np.interp``). One loop for one row and for a matrix, so ``margin_one``
    and ``margins`` agree to the bit.
    """
    for i in range(X.shape[0]):
        out[i] = spline_one(X[i], coef, columns, bounds, knots, values, intercept)


@dataclass
class SplineEstimator(_FromMargins):
    """A logistic model on degree-1 splines: one piecewise-linear function per number.

    ``intercept + Σ coef_j·x_j + Σ_s f_s(x[columns[s]])``, where ``f_s`` runs through
    ``values[s]`` at ``knots[s]`` and is constant beyond the end knots. Columns without a
    spline (one-hot columns, constants) have a ``coef``; a spline column's ``coef`` is 0.
    ``mean`` (each ``coef`` column's training mean; 0 for a spline column) and
    ``offsets`` (each spline's training mean) are the SHAP baseline: a column contributes
    its term's difference from its training mean, as the logistic model's linear SHAP
    does, and the bias is the mean training margin.
    """

    coef: tuple[float, ...]
    mean: tuple[float, ...]
    columns: tuple[int, ...]
    knots: tuple[tuple[float, ...], ...]
    values: tuple[tuple[float, ...], ...]
    offsets: tuple[float, ...]
    intercept: float
    family: ClassVar[str] = "spline"
    width: int = field(init=False)

    def __post_init__(self) -> None:
        self.width = len(self.coef)
        if len(self.mean) != self.width:
            raise ValueError("spline coef and mean differ in length")
        if not len(self.columns) == len(self.knots) == len(self.values) == len(self.offsets):
            raise ValueError("spline columns, knots, values and offsets differ in length")
        for column, knots, values in zip(self.columns, self.knots, self.values, strict=True):
            steps = np.diff(knots)
            if not 0 <= column < self.width or len(knots) < 2 or len(values) != len(knots):
                raise ValueError(f"spline of column {column}: needs 2+ knots and one value each")
            if not (steps > 0).all():
                raise ValueError(f"spline of column {column}: knots must increase")
        self._coef = np.asarray(self.coef, dtype=np.float64)
        self._mean = np.asarray(self.mean, dtype=np.float64)
        self._columns = np.asarray(self.columns, dtype=np.int64)
        self._bounds = np.cumsum([0, *map(len, self.knots)]).astype(np.int64)
        self._knots = np.asarray([k for ks in self.knots for k in ks], dtype=np.float64)
        self._values = np.asarray([v for vs in self.values for v in vs], dtype=np.float64)
        ints = np.concatenate([[len(self.columns)], self._columns, self._bounds])
        reals = np.concatenate([[self.intercept], self._coef, self._knots, self._values])
        self.packed = (one_row.SPLINE, ints.astype(np.int64), reals)

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix."""
        X = _matrix(X, self.width)
        out = np.empty(X.shape[0])
        _spline_margins(
            X,
            self._coef,
            self._columns,
            self._bounds,
            self._knots,
            self._values,
            self.intercept,
            out,
        )
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP (the model is additive per column): each column's term minus its
        training mean; the bias is the mean training margin."""
        X = _matrix(X, self.width)
        contrib = (X - self._mean) * self._coef
        for column, knots, values, offset in zip(
            self.columns, self.knots, self.values, self.offsets, strict=True
        ):
            contrib[:, column] = np.interp(X[:, column], knots, values) - offset
        bias = self.intercept + float(self._mean @ self._coef) + sum(self.offsets)
        return np.hstack([contrib, np.full((X.shape[0], 1), bias)])

    def save(self, folder: Path) -> list[str]:
        """Write ``estimator.json`` (floats as JSON numbers: ``repr`` round-trips exactly)."""
        meta = {
            "family": self.family,
            "width": self.width,
            "coef": list(self.coef),
            "mean": list(self.mean),
            "splines": [
                {"column": c, "knots": list(k), "values": list(v), "offset": o}
                for c, k, v, o in zip(
                    self.columns, self.knots, self.values, self.offsets, strict=True
                )
            ],
            "intercept": self.intercept,
        }
        return [_write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> SplineEstimator:
        """Read the model written by :meth:`save`."""
        meta = _read_meta(folder, cls.family)
        splines = meta["splines"]
        model = cls(
            tuple(map(float, meta["coef"])),
            tuple(map(float, meta["mean"])),
            tuple(int(s["column"]) for s in splines),
            tuple(tuple(map(float, s["knots"])) for s in splines),
            tuple(tuple(map(float, s["values"])) for s in splines),
            tuple(float(s["offset"]) for s in splines),
            float(meta["intercept"]),
        )
        if model.width != meta["width"]:
            raise ValueError(f"{META_FILE} says width {meta['width']}, coef has {model.width}")
        return model


# ----------------------------------------------------------------------------- LightGBM


class LightGBMEstimator(_FromMargins):
    """A binary LightGBM model as its model text, walked by compiled code when verified."""

    family: ClassVar[str] = "lightgbm"
    MODEL_FILE: ClassVar[str] = "lightgbm_model.txt"

    def __init__(
        self, model_text: str, width: int, best_iteration: int = 0, compiled: bool = True
    ) -> None:
        """Build the estimator from LightGBM's model text.

        Args:
            model_text: ``Booster.model_to_string()`` of the whole model.
            width: the number of encoded input columns.
            best_iteration: trees used when > 0 (early stopping), else all of them.
            compiled: whether the flat-array walk was checked equal to LightGBM (training
                decides this with the booster at hand; see ``compile_lightgbm``).
        """
        sigmoid = binary_sigmoid(model_text)
        if sigmoid is None:
            raise ValueError("only LightGBM models with the binary objective are supported")
        self.model_text = model_text
        self.width = width
        self.best_iteration = best_iteration
        self.sigmoid = sigmoid
        self.trees: CompiledTrees | None = (
            parse_lightgbm(model_text, width, best_iteration) if compiled else None
        )
        self.compiled = self.trees is not None
        if self.trees is not None:
            reals = np.concatenate([[sigmoid], self.trees.reals])
            self.packed = (one_row.LIGHTGBM, self.trees.ints, reals)
        self._booster: lightgbm_c.Booster | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only the data (Spark ships the model to its workers)."""
        return {
            "model_text": self.model_text,
            "width": self.width,
            "best_iteration": self.best_iteration,
            "compiled": self.compiled,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the compiled walk on the receiving side."""
        self.__init__(**state)  # type: ignore[misc]

    @property
    def booster(self) -> lightgbm_c.Booster:
        """Return the booster in LightGBM's C library (parsed on first use only).

        Through :mod:`churnops.scoring.lightgbm_c`, not the ``lightgbm`` package, whose
        import costs two seconds of scikit-learn for a call of milliseconds.
        """
        if self._booster is None:
            self._booster = lightgbm_c.Booster(self.model_text)
        return self._booster

    @property
    def _num_iteration(self) -> int:
        return self.best_iteration if self.best_iteration > 0 else -1

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix."""
        X = _matrix(X, self.width)
        if self.trees is not None:
            raw = self.trees.raw_many(X)
        else:
            raw = self.booster.predict(X, lightgbm_c.PREDICT_RAW_SCORE, self._num_iteration)
        return np.asarray(self.sigmoid * raw)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP from LightGBM's own ``pred_contrib`` (raw-score log-odds, bias last)."""
        X = _matrix(X, self.width)
        return self.booster.predict(X, lightgbm_c.PREDICT_CONTRIB, self._num_iteration)

    def save(self, folder: Path) -> list[str]:
        """Write the model text and ``estimator.json`` (iteration, width, compiled)."""
        (folder / self.MODEL_FILE).write_text(self.model_text)
        meta = {
            "family": self.family,
            "width": self.width,
            "best_iteration": self.best_iteration,
            "compiled": self.compiled,
            "model_file": self.MODEL_FILE,
        }
        return [self.MODEL_FILE, _write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> LightGBMEstimator:
        """Read the model written by :meth:`save` (no ``lightgbm`` import when compiled)."""
        meta = _read_meta(folder, cls.family)
        return cls(
            (folder / meta["model_file"]).read_text(),
            int(meta["width"]),
            int(meta["best_iteration"]),
            bool(meta["compiled"]),
        )


# ----------------------------------------------------------------------------- XGBoost


class XGBoostEstimator(_FromMargins):
    """A binary XGBoost booster in XGBoost's UBJSON format, walked by compiled code when verified.

    XGBoost's own one-row predict costs ~0.6 ms; the compiled walk
    (:mod:`churnops.scoring.xgboost_trees`) repeats its float32 arithmetic in a few
    microseconds and equals it bit for bit on probe rows. ``compiled`` records training's
    check (``compile_xgboost``); without it (older artifacts) XGBoost's ``inplace_predict``
    scores as before. ``xgboost`` is imported only for contributions, or when not compiled.
    """

    family: ClassVar[str] = "xgboost"
    MODEL_FILE: ClassVar[str] = "xgboost_model.ubj"

    def __init__(
        self,
        booster: Any,
        width: int,
        iteration_range: tuple[int, int],
        compiled: bool = False,
    ) -> None:
        """Build the estimator from a booster or its UBJSON bytes.

        Args:
            booster: a ``xgboost.Booster``, or the bytes of one saved as UBJSON (what
                :meth:`load` reads, so no ``xgboost`` import is needed to score).
            width: the number of encoded input columns.
            iteration_range: the boosting rounds ``predict`` uses (``(0, 0)``: all).
            compiled: whether the flat-array walk was checked equal to XGBoost (training
                decides this with the booster at hand; see ``compile_xgboost``).
        """
        if isinstance(booster, bytes | bytearray | memoryview):
            self._raw: bytes | None = bytes(booster)
            self._booster: Any = None
        else:
            self._raw, self._booster = None, booster
        self.width = width
        self.iteration_range = (int(iteration_range[0]), int(iteration_range[1]))
        self.trees: CompiledXGBoost | None = (
            parse_xgboost(self.raw, width, self.iteration_range) if compiled else None
        )
        self.compiled = self.trees is not None
        if self.trees is not None:
            self.packed = (one_row.XGBOOST, self.trees.ints, self.trees.reals)

    @property
    def raw(self) -> bytes:
        """Return the model as UBJSON bytes (from the booster on first use)."""
        if self._raw is None:
            self._raw = bytes(self._booster.save_raw("ubj"))
        return self._raw

    @property
    def booster(self) -> Any:
        """Return the ``xgboost.Booster`` (loaded from the UBJSON bytes on first use)."""
        if self._booster is None:
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(bytearray(self.raw))
            self._booster = booster
        return self._booster

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only the data (Spark ships the model to its workers)."""
        return {
            "booster": self.raw,
            "width": self.width,
            "iteration_range": self.iteration_range,
            "compiled": self.compiled,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the compiled walk on the receiving side."""
        self.__init__(**state)  # type: ignore[misc]

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix (XGBoost sums its trees in float32)."""
        X = _matrix(X, self.width)
        if self.trees is not None:
            return self.trees.raw_many(X)
        out = self.booster.inplace_predict(
            X, iteration_range=self.iteration_range, predict_type="margin"
        )
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP from XGBoost's own ``pred_contribs`` (margin log-odds, bias last)."""
        from xgboost import DMatrix

        X = _matrix(X, self.width)
        out = self.booster.predict(
            DMatrix(X), pred_contribs=True, iteration_range=self.iteration_range
        )
        return np.asarray(out, dtype=np.float64)

    def save(self, folder: Path) -> list[str]:
        """Write the booster (UBJSON) and ``estimator.json`` (iteration range, width, compiled)."""
        (folder / self.MODEL_FILE).write_bytes(self.raw)
        meta = {
            "family": self.family,
            "width": self.width,
            "iteration_range": list(self.iteration_range),
            "compiled": self.compiled,
            "model_file": self.MODEL_FILE,
        }
        return [self.MODEL_FILE, _write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> XGBoostEstimator:
        """Read the model written by :meth:`save` (no ``xgboost`` import when compiled).

        Artifacts written before the walk existed have no ``compiled`` key: they keep
        XGBoost's own predict, so their numbers do not change.
        """
        meta = _read_meta(folder, cls.family)
        begin, end = meta["iteration_range"]
        return cls(
            (folder / meta["model_file"]).read_bytes(),
            int(meta["width"]),
            (begin, end),
            bool(meta.get("compiled", False)),
        )


# ----------------------------------------------------------------------------- CatBoost

CategoryTables = dict[int, tuple[int, list[int]]]
"""A categorical split's ``split_index`` -> (block, bit for codes -1, 0, 1, ...)."""


class CatBoostEstimator(_FromMargins):
    """A binary CatBoost model in CatBoost's JSON format, walked by compiled code when verified.

    CatBoost sees each categorical as one integer column (:class:`CodeLayout`) and builds
    its own target statistics for it. Those statistics would make one row cost CatBoost's
    ``predict`` (~0.5 ms: a ``Pool`` per call); training instead reads every categorical
    split's bit per level from CatBoost (``tables``) and checks the compiled walk against
    CatBoost on probe rows, so one row costs a few microseconds and equals the batch's
    number to the bit. ``catboost`` is imported only for contributions, or when the walk
    was not verified (``tables`` None).
    """

    family: ClassVar[str] = "catboost"
    MODEL_FILE: ClassVar[str] = "catboost_model.json"

    def __init__(self, model_text: str, layout: CodeLayout, tables: CategoryTables | None) -> None:
        """Build the estimator from CatBoost's JSON model text.

        Args:
            model_text: ``save_model(format="json")`` of the whole model.
            layout: which encoded columns are one-hot blocks (CatBoost's categoricals).
            tables: the categorical splits' bits per level, as training read them from
                CatBoost (see ``compile_catboost``); None keeps CatBoost's own predict.
        """
        self.model_text = model_text
        self.layout = layout
        self.width = layout.width
        self.trees: ObliviousTrees | None = (
            parse_catboost(model_text, layout, tables) if tables is not None else None
        )
        self.tables = tables if self.trees is not None else None
        self.compiled = self.trees is not None
        if self.trees is not None:
            self.packed = (one_row.CATBOOST, self.trees.ints, self.trees.reals)
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only the data (Spark ships the model to its workers)."""
        return {"model_text": self.model_text, "layout": self.layout, "tables": self.tables}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the compiled walk on the receiving side."""
        self.__init__(**state)  # type: ignore[misc]

    @property
    def model(self) -> Any:
        """Return the ``catboost.CatBoost`` model (read from the JSON text on first use)."""
        if self._model is None:
            self._model = load_catboost(self.model_text)
        return self._model

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix."""
        X = _matrix(X, self.width)
        if self.trees is not None:
            return self.trees.raw_many(X)
        raw = self.model.predict(self.layout.pool(X), prediction_type="RawFormulaVal")
        return np.asarray(raw, dtype=np.float64).reshape(-1)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP from CatBoost's own ``ShapValues`` (log-odds, bias last).

        CatBoost explains a categorical as its one code column; that value is put on the
        block's first encoded column, so summing per source column (as reasons do) gives
        CatBoost's number.
        """
        X = _matrix(X, self.width)
        shap = self.model.get_feature_importance(data=self.layout.pool(X), type="ShapValues")
        shap = np.asarray(shap, dtype=np.float64)
        dense = self.layout.dense
        out = np.zeros((X.shape[0], self.width + 1))
        out[:, dense] = shap[:, : len(dense)]
        for k, (start, _width) in enumerate(self.layout.blocks):
            out[:, start] = shap[:, len(dense) + k]
        out[:, -1] = shap[:, -1]
        return out

    def save(self, folder: Path) -> list[str]:
        """Write the JSON model and ``estimator.json`` (blocks, the verified tables)."""
        (folder / self.MODEL_FILE).write_text(self.model_text)
        meta = {
            "family": self.family,
            "width": self.width,
            "blocks": [list(block) for block in self.layout.blocks],
            "compiled": self.compiled,
            "tables": [
                {"split": index, "block": block, "bits": bits}
                for index, (block, bits) in sorted((self.tables or {}).items())
            ],
            "model_file": self.MODEL_FILE,
        }
        return [self.MODEL_FILE, _write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> CatBoostEstimator:
        """Read the model written by :meth:`save` (no ``catboost`` import when compiled)."""
        meta = _read_meta(folder, cls.family)
        layout = CodeLayout(int(meta["width"]), tuple((int(a), int(b)) for a, b in meta["blocks"]))
        tables: CategoryTables | None = None
        if meta["compiled"]:
            tables = {
                int(t["split"]): (int(t["block"]), [int(b) for b in t["bits"]])
                for t in meta["tables"]
            }
        return cls((folder / meta["model_file"]).read_text(), layout, tables)


# ----------------------------------------------------------------------------- ensemble


class EnsembleEstimator(_FromMargins):
    """A weighted sum of other families' margins: ``intercept + Σ weight_k · margin_k``.

    Training fits the weights on the members' out-of-fold margins (a logistic
    meta-learner with non-negative weights). Because the blend is linear in log-odds,
    everything else follows from the members: one row is the same sum of the members'
    one-row margins (each bit-equal to its batch number, and the sum is taken in the same
    order, so bit-equal too), and the weighted sum of the members' exact SHAP values is
    the blend's exact SHAP values. Each member is saved in its own family's format in a
    subfolder named after it; ``estimator.json`` holds the weights.
    """

    family: ClassVar[str] = "ensemble"

    def __init__(
        self, members: Sequence[Estimator], weights: Sequence[float], intercept: float
    ) -> None:
        """Blend ``members`` (one per family) with ``weights``, plus ``intercept``."""
        if not members or len(members) != len(weights):
            raise ValueError("an ensemble needs one weight per member, and members")
        families = [m.family for m in members]
        if len(set(families)) != len(families) or self.family in families:
            raise ValueError(f"ensemble members must be distinct single families: {families}")
        widths = {m.width for m in members}
        if len(widths) != 1:
            raise ValueError(f"ensemble members read different widths: {sorted(widths)}")
        self.members = list(members)
        self.weights = [float(w) for w in weights]
        self.intercept = float(intercept)
        self.width = widths.pop()
        packs = [getattr(m, "packed", None) for m in self.members]
        if all(pack is not None for pack in packs):
            ints, reals = one_row.pack_blend(packs, self.weights, self.intercept)
            self.packed = (one_row.ENSEMBLE, ints, reals)

    def margins(self, X: np.ndarray) -> np.ndarray:
        """Return the log-odds of an encoded matrix."""
        X = _matrix(X, self.width)
        out = np.full(X.shape[0], self.intercept)
        for member, weight in zip(self.members, self.weights, strict=True):
            out += weight * member.margins(X)
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """The weighted sum of the members' SHAP values; the intercept joins the bias."""
        X = _matrix(X, self.width)
        out = np.zeros((X.shape[0], self.width + 1))
        for member, weight in zip(self.members, self.weights, strict=True):
            out += weight * member.contributions(X)
        out[:, -1] += self.intercept
        return out

    def save(self, folder: Path) -> list[str]:
        """Write each member into ``<family>/`` and the weights into ``estimator.json``."""
        files: list[str] = []
        for member in self.members:
            (folder / member.family).mkdir()
            files += [f"{member.family}/{name}" for name in member.save(folder / member.family)]
        meta = {
            "family": self.family,
            "width": self.width,
            "intercept": self.intercept,
            "members": [
                {"family": m.family, "folder": m.family, "weight": w}
                for m, w in zip(self.members, self.weights, strict=True)
            ],
        }
        return [*files, _write_meta(folder, meta)]

    @classmethod
    def load(cls, folder: Path) -> EnsembleEstimator:
        """Read the members and weights written by :meth:`save`.

        A member's folder must be a plain name inside ``folder``: the manifest verifies
        only the files under the artifact folder, so a path out of it is refused.
        """
        meta = _read_meta(folder, cls.family)
        members, weights = [], []
        for entry in meta["members"]:
            name = str(entry["folder"])
            if name in ("", ".", "..") or Path(name).name != name:
                raise ValueError(f"ensemble member folder {name!r} is not a plain name")
            if entry["family"] == cls.family:
                raise ValueError("an ensemble cannot hold an ensemble")
            members.append(load_estimator(str(entry["family"]), folder / name))
            weights.append(float(entry["weight"]))
        model = cls(members, weights, float(meta["intercept"]))
        if model.width != meta["width"]:
            raise ValueError(f"{META_FILE} says width {meta['width']}, members read {model.width}")
        return model


ESTIMATORS: dict[str, Any] = {
    cls.family: cls
    for cls in (
        LogisticEstimator,
        SplineEstimator,
        LightGBMEstimator,
        XGBoostEstimator,
        CatBoostEstimator,
        EnsembleEstimator,
    )
}


def load_estimator(family: str, folder: Path) -> Estimator:
    """Load the native estimator of ``family`` from ``folder``; ValueError if unknown."""
    try:
        cls = ESTIMATORS[family]
    except KeyError:
        raise ValueError(
            f"unknown model family {family!r}; known: {', '.join(ESTIMATORS)}"
        ) from None
    estimator: Estimator = cls.load(folder)
    return estimator
