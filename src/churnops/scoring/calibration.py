"""Calibrators as data: the map from raw to calibrated probability, with no fitted object.

Why data: a calibrator in the model artifact must load without scikit-learn (no pickle, no
import cost in a serving process) and give the same numbers in training, in the API and in
batch scoring. Both methods are a few numbers: isotonic regression *is* its thresholds
linearly interpolated and clipped (what ``IsotonicRegression(out_of_bounds="clip")``
predicts), and Platt scaling *is* one slope and one intercept on the log-odds. Fitting
stays in :mod:`churnops.training.calibration`, which converts its result to these classes.

Every function here is elementwise and compiled (numba): one scalar function per step —
sigmoid, log-odds, interpolation — called once per value, whether the value is one row's
margin (:func:`finish_one`, the API's path, ~1 µs where numpy's ufuncs on a one-element
array cost several) or one of a million in a batch (:func:`finish`). One function, so
one row alone and the same row inside any batch give the same bits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from churnops.scoring.jsonfile import read_object

FILE = "calibrator.json"
LOGIT_CLIP = 1e-6


NONE, ISOTONIC, SIGMOID = 0, 1, 2  # how ``finish`` calibrates (its ``method`` argument)
_EMPTY = np.zeros(0)


@njit(cache=True, nogil=True)
def _sigmoid(z: float) -> float:  # pragma: no cover - compiled
    """The stable two-branch sigmoid: no overflow for any margin (-800 gives 0.0)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def _logit(p: float) -> float:  # pragma: no cover - compiled
    """Log-odds, clipped away from 0 and 1 so a saturated probability stays finite."""
    p = min(max(p, LOGIT_CLIP), 1.0 - LOGIT_CLIP)
    return math.log(p / (1.0 - p))


@njit(cache=True, nogil=True)
def interp_one(x: float, xs: Any, ys: Any) -> float:  # pragma: no cover - compiled
    """``np.interp`` for one value (same rules: flat beyond the ends, NaN stays NaN).

    Compiled code calls it: the isotonic calibrator, and the spline family's terms.
    """
    n = xs.shape[0]
    if x != x:
        return x
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    lo, hi = 0, n - 1  # xs[lo] < x < xs[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xs[mid] <= x:
            lo = mid
        else:
            hi = mid
    if x == xs[lo]:
        return ys[lo]
    slope = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
    return slope * (x - xs[lo]) + ys[lo]


@njit(cache=True, nogil=True)
def _calibrate(
    p: float, method: int, a: float, b: float, xs: Any, ys: Any
) -> float:  # pragma: no cover - compiled
    if method == ISOTONIC:
        return min(max(interp_one(p, xs, ys), 0.0), 1.0)
    if method == SIGMOID:
        return _sigmoid(a * _logit(p) + b)
    return p


@njit(cache=True, nogil=True)
def finish_one(
    z: float, method: int, a: float, b: float, xs: Any, ys: Any
) -> float:  # pragma: no cover - compiled
    """Return the calibrated probability of one margin (log-odds)."""
    return _calibrate(_sigmoid(z), method, a, b, xs, ys)


@njit(cache=True, nogil=True)
def _finish_into(
    z: Any, out: Any, method: int, a: float, b: float, xs: Any, ys: Any
) -> None:  # pragma: no cover - compiled
    for i in range(z.shape[0]):
        out[i] = finish_one(z[i], method, a, b, xs, ys)


@njit(cache=True, nogil=True)
def _calibrate_into(
    p: Any, out: Any, method: int, a: float, b: float, xs: Any, ys: Any
) -> None:  # pragma: no cover - compiled
    for i in range(p.shape[0]):
        out[i] = _calibrate(p[i], method, a, b, xs, ys)


@njit(cache=True, nogil=True)
def _logit_into(p: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in range(p.shape[0]):
        out[i] = _logit(p[i])


def _elementwise(kernel: Any, values: Any, *args: Any) -> np.ndarray:
    """Apply a compiled ``kernel(flat_in, flat_out, *args)`` to an array of any shape."""
    x = np.asarray(values, dtype=np.float64)
    out = np.empty(x.shape)
    kernel(np.ascontiguousarray(x).reshape(-1), out.reshape(-1), *args)
    return out


def logit(p: np.ndarray) -> np.ndarray:
    """Return the log-odds of probabilities, clipped away from 0 and 1.

    The clip keeps a raw probability of exactly 0 or 1 (a saturated booster) finite, so the
    sigmoid calibrator always gets a number.
    """
    return _elementwise(_logit_into, p)


def expit(z: np.ndarray) -> np.ndarray:
    """Return the logistic sigmoid of ``z`` in float64, without overflow for any margin.

    Written out (instead of ``scipy.special.expit``) so scoring never imports SciPy.
    """
    return _elementwise(_finish_into, z, NONE, 0.0, 0.0, _EMPTY, _EMPTY)


def finish(margins: np.ndarray, calibrator: Calibrator | None) -> np.ndarray:
    """Return calibrated probabilities of margins (the sigmoid, then ``calibrator``)."""
    return _elementwise(_finish_into, margins, *finishing(calibrator))


def finishing(calibrator: Calibrator | None) -> tuple[int, float, float, np.ndarray, np.ndarray]:
    """Return :func:`finish_one`'s arguments after the margin for ``calibrator``."""
    if calibrator is None:
        return NONE, 0.0, 0.0, _EMPTY, _EMPTY
    return calibrator.arguments


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Isotonic calibration: piecewise-linear through the fitted thresholds, clipped to [0, 1]."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    method: str = "isotonic"

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys) or not self.xs:
            raise ValueError("isotonic calibrator needs as many ys as xs, at least one")
        object.__setattr__(self, "_xs", np.asarray(self.xs, dtype=np.float64))
        object.__setattr__(self, "_ys", np.asarray(self.ys, dtype=np.float64))

    @property
    def arguments(self) -> tuple[int, float, float, np.ndarray, np.ndarray]:
        """The compiled kernels' description of this calibrator."""
        return ISOTONIC, 0.0, 0.0, self._xs, self._ys  # type: ignore[attr-defined]

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw probabilities ``p``."""
        return _elementwise(_calibrate_into, p, *self.arguments)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (floats round-trip exactly through ``repr``)."""
        return {"method": self.method, "xs": list(self.xs), "ys": list(self.ys)}


@dataclass(frozen=True)
class SigmoidCalibrator:
    """Platt scaling: ``expit(a * logit(p) + b)``."""

    a: float
    b: float
    method: str = "sigmoid"

    @property
    def arguments(self) -> tuple[int, float, float, np.ndarray, np.ndarray]:
        """The compiled kernels' description of this calibrator."""
        return SIGMOID, float(self.a), float(self.b), _EMPTY, _EMPTY

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw probabilities ``p``."""
        return _elementwise(_calibrate_into, p, *self.arguments)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (floats round-trip exactly through ``repr``)."""
        return {"method": self.method, "a": self.a, "b": self.b}


Calibrator = IsotonicCalibrator | SigmoidCalibrator


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    """Rebuild a calibrator from :meth:`to_dict` output; ValueError on anything else."""
    method = data.get("method")
    if method == "isotonic":
        return IsotonicCalibrator(
            tuple(float(x) for x in data["xs"]), tuple(float(y) for y in data["ys"])
        )
    if method == "sigmoid":
        return SigmoidCalibrator(float(data["a"]), float(data["b"]))
    raise ValueError(f"unknown calibration method {method!r}")


def save_calibrator(calibrator: Calibrator, folder: Path) -> str:
    """Write ``calibrator.json`` into ``folder``; return its file name."""
    (folder / FILE).write_text(json.dumps(calibrator.to_dict(), allow_nan=False))
    return FILE


def load_calibrator(folder: Path) -> Calibrator:
    """Read ``calibrator.json`` from ``folder``."""
    return calibrator_from_dict(read_object(folder / FILE))
