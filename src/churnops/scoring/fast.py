"""The single-record fast path: one encoded row to one calibrated probability in microseconds.

Why hand-written: the estimators' own ``predict_proba`` is built for matrices. For one row,
LightGBM's sklearn wrapper spends ~0.3 ms validating input and allocating before its C
code runs, XGBoost's builds a DMatrix, and sklearn's isotonic calibrator re-validates its
input on every call — together several times the cost of the trees themselves, which the
online API cannot afford (issue 4: the model may cost at most 30% of a request). So each
family gets the cheapest *exact* route to the same numbers:

- LightGBM: binary numerical ensembles (every demo model) are flattened into contiguous
  arrays and walked by numba-compiled loops (:mod:`churnops.scoring.trees`, self-checked
  against the booster at load); anything else uses the C API's
  ``LGBM_BoosterPredictForMatSingleRowFast`` (config built once, preallocated buffer) for
  one row and ``Booster.predict`` for a matrix.
- XGBoost: ``Booster.inplace_predict`` (no DMatrix).
- Logistic (StandardScaler + LogisticRegression): the scaler folded into the weights and
  one dot product in plain Python.
- Calibrators: isotonic is a linear interpolation (``np.interp`` on the fitted thresholds,
  which is what ``IsotonicRegression`` with clipping computes); sigmoid is one ``exp``.

Exactness is a test: the fast path must agree with the registered pyfunc model to 1e-6 on
every demo customer. Batches go through :meth:`FastScorer.many`, which calls the boosters'
native batch predict (also skipping the sklearn wrappers) and repeats the calibrators' and
the logistic pipeline's own arithmetic and dtypes, so batch scoring can use it in place of
:meth:`ScoringModel.probabilities` and get the same numbers to 1e-12.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from churnops.scoring.model import ScoringModel
from churnops.scoring.trees import compile_lightgbm
from churnops.training.calibration import logit

_LGBM_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_LGBM_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


def _expit(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class _LightGBMRow:
    """One-row LightGBM prediction through the C API's fast single-row entry point."""

    def __init__(self, booster: Any, width: int) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib = _LIB
        self._safe_call = _safe_call
        self._booster = booster  # the fast config points into it: keep it alive
        self._config = ctypes.c_void_p()
        best = int(getattr(booster, "best_iteration", 0) or 0)
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_LGBM_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(best if best > 0 else -1),
                ctypes.c_int(_LGBM_DTYPE_FLOAT64),
                ctypes.c_int32(width),
                b"num_threads=1",
                ctypes.byref(self._config),
            )
        )
        self._buffer = (ctypes.c_double * width)()
        self._out = ctypes.c_double()
        self._out_len = ctypes.c_int64()
        # Called through PyDLL, which keeps the GIL: the prediction takes a few microseconds,
        # and a ctypes call that releases the GIL (the CDLL default) lets any waiting thread
        # (the audit writer, a thread-pool job) take it and run for up to the interpreter's
        # switch interval (5 ms) before this request may continue: the p99 tail.
        self._call = ctypes.PyDLL(_LIB._name).LGBM_BoosterPredictForMatSingleRowFast
        self._call.restype = ctypes.c_int
        # The config owns scratch space, so one row at a time per scorer.
        self._lock = threading.Lock()

    def __call__(self, row: Sequence[float]) -> float:
        with self._lock:
            self._buffer[:] = row
            if self._call(
                self._config,
                self._buffer,
                ctypes.byref(self._out_len),
                ctypes.byref(self._out),
            ):
                self._safe_call(-1)  # raises LightGBMError with the library's message
            return self._out.value

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)


class FastScorer:
    """Exact, fast probabilities for encoded rows of one :class:`ScoringModel`."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self.threshold = float(model.threshold)
        width = model.encoder.width
        raw_one, raw_many = self._raw_functions(model, width)
        self._raw_one = raw_one
        self._raw_many = raw_many
        self._cal_one, self._cal_many = _calibration(model)
        cal_many = self._cal_many
        dtype = raw_many(np.zeros((1, width))).dtype
        if cal_many is not None and dtype != np.float64:
            # XGBoost's probabilities are float32 and calibrators keep their input's dtype
            # (as ScoringModel.probabilities does): one row goes the same way, so that
            # one() and many() agree.
            def cal_one(p: float) -> float:
                return float(cal_many(np.array([p], dtype=dtype))[0])

            self._cal_one = cal_one

    def one(self, row: Sequence[float]) -> float:
        """Return the calibrated churn probability of one encoded row."""
        p = self._raw_one(row)
        return self._cal_one(p) if self._cal_one is not None else p

    def many(self, X: np.ndarray) -> np.ndarray:
        """Return calibrated churn probabilities of an encoded matrix."""
        if len(X) == 0:
            return np.zeros(0)
        p = self._raw_many(X)
        return self._cal_many(p) if self._cal_many is not None else p

    @staticmethod
    def _raw_functions(
        model: ScoringModel, width: int
    ) -> tuple[Callable[[Sequence[float]], float], Callable[[np.ndarray], np.ndarray]]:
        est = model.estimator
        if model.family == "lightgbm" and hasattr(est, "booster_"):
            booster = est.booster_
            best = int(getattr(booster, "best_iteration", 0) or 0)
            n_iter = best if best > 0 else None

            compiled = compile_lightgbm(booster, width, n_iter)
            if compiled is not None:
                return compiled.one, compiled.many

            def many(X: np.ndarray) -> np.ndarray:
                return np.asarray(booster.predict(X, num_iteration=n_iter), dtype=np.float64)

            return _LightGBMRow(booster, width), many
        if model.family == "xgboost" and hasattr(est, "get_booster"):
            booster = est.get_booster()
            iteration_range = est._get_iteration_range(None)

            def many(X: np.ndarray) -> np.ndarray:
                # float32, as predict_proba returns it: calibrators keep their input's dtype
                return np.asarray(booster.inplace_predict(X, iteration_range=iteration_range))

            def one(row: Sequence[float]) -> float:
                X = np.array(row, dtype=np.float64).reshape(1, -1)
                return float(booster.inplace_predict(X, iteration_range=iteration_range)[0])

            return one, many
        linear = _logistic(est)
        if linear is not None:
            mean, scale, coef, bias = linear
            weights = coef[0] / scale  # the scaler folded in: one dot product per row
            folded_bias = bias[0] - float(np.sum(mean * weights))
            w_list = weights.tolist()

            def one(row: Sequence[float]) -> float:
                return _expit(math.fsum(map(float.__mul__, w_list, row)) + folded_bias)

            def many(X: np.ndarray) -> np.ndarray:
                # sklearn's own steps and order (scale, dot, expit): the same bits as
                # predict_proba, where folding differs by an ulp that a steep isotonic
                # calibrator can magnify past 1e-12.
                return np.asarray(expit(((X - mean) / scale) @ coef.T + bias)[:, 0])

            return one, many

        # Anything else (a family added later): correct, just not fast.
        def generic_many(X: np.ndarray) -> np.ndarray:
            return np.asarray(est.predict_proba(X)[:, 1], dtype=np.float64)

        def generic_one(row: Sequence[float]) -> float:
            return float(generic_many(np.array([row], dtype=np.float64))[0])

        return generic_one, generic_many


def _logistic(est: Any) -> tuple[Any, Any, np.ndarray, np.ndarray] | None:
    """Return (mean, scale, coef, intercept) of [StandardScaler +] binary LogisticRegression.

    ``mean`` and ``scale`` are 0.0 and 1.0 without a scaler (or with it centring or
    scaling off); None for any other estimator.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return None
    steps = list(est.named_steps.values()) if isinstance(est, Pipeline) else [est]
    scaler = steps[0] if len(steps) == 2 and isinstance(steps[0], StandardScaler) else None
    logreg = steps[-1]
    if not isinstance(logreg, LogisticRegression) or logreg.coef_.shape[0] != 1:
        return None
    if len(steps) > (2 if scaler is not None else 1):
        return None
    mean: Any = 0.0
    scale: Any = 1.0
    if scaler is not None:
        scale = scaler.scale_ if scaler.with_std and scaler.scale_ is not None else 1.0
        mean = scaler.mean_ if scaler.with_mean and scaler.mean_ is not None else 0.0
    return mean, scale, logreg.coef_, logreg.intercept_


def _calibration(
    model: ScoringModel,
) -> tuple[Callable[[float], float] | None, Callable[[np.ndarray], np.ndarray] | None]:
    calibrator = model.calibrator
    if calibrator is None:
        return None, None
    if calibrator.method == "isotonic":
        iso = calibrator.model
        xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
        ys = np.asarray(iso.y_thresholds_, dtype=np.float64)

        def iso_many(p: np.ndarray) -> np.ndarray:
            # IsotonicRegression.predict casts back to its input's dtype (float32 for XGBoost)
            return np.clip(np.interp(p, xs, ys).astype(p.dtype, copy=False), 0.0, 1.0)

        def iso_one(p: float) -> float:
            return min(max(float(np.interp(p, xs, ys)), 0.0), 1.0)

        return iso_one, iso_many
    lr = calibrator.model
    a = float(lr.coef_[0][0])
    b = float(lr.intercept_[0])

    def sig_one(p: float) -> float:
        p = min(max(p, 1e-6), 1 - 1e-6)
        return _expit(a * math.log(p / (1 - p)) + b)

    def sig_many(p: np.ndarray) -> np.ndarray:
        # The calibrator's own steps (logit in p's dtype, LogisticRegression's dot product
        # and expit) without sklearn's per-call validation: batch scoring may use this in
        # place of ScoringModel.probabilities, so the bits must agree, not just 1e-6.
        return np.asarray(expit(logit(p)[:, None] @ lr.coef_.T + lr.intercept_)[:, 0])

    return sig_one, sig_many
