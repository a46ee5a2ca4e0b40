"""Calibrators as data: the map from raw to calibrated probability, with no fitted object.

Why data: a calibrator in the model artifact must load without scikit-learn (no pickle, no
import cost in a serving process) and give the same numbers in training, in the API and in
batch scoring. Both methods are a few numbers: isotonic regression *is* its thresholds
linearly interpolated and clipped (what ``IsotonicRegression(out_of_bounds="clip")``
predicts), and Platt scaling *is* one slope and one intercept on the log-odds. Fitting
stays in :mod:`churnops.training.calibration`, which converts its result to these classes.

Every function here is elementwise numpy, so one row scored as a 1-element array and the
same row inside a million-row batch give the same bits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churnops.scoring.jsonfile import read_object

FILE = "calibrator.json"
LOGIT_CLIP = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Return the log-odds of probabilities, clipped away from 0 and 1.

    The clip keeps a raw probability of exactly 0 or 1 (a saturated booster) finite, so the
    sigmoid calibrator always gets a number.
    """
    p = np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.asarray(np.log(p / (1 - p)))


def expit(z: np.ndarray) -> np.ndarray:
    """Return the logistic sigmoid of ``z`` in float64, without overflow for any margin.

    Written out (instead of ``scipy.special.expit``) so scoring never imports SciPy, and in
    the stable two-branch form so a margin of -800 gives 0.0 without a warning.
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.asarray(np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


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

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw probabilities ``p``."""
        xs: np.ndarray = self._xs  # type: ignore[attr-defined]
        ys: np.ndarray = self._ys  # type: ignore[attr-defined]
        return np.clip(np.interp(np.asarray(p, dtype=np.float64), xs, ys), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (floats round-trip exactly through ``repr``)."""
        return {"method": self.method, "xs": list(self.xs), "ys": list(self.ys)}


@dataclass(frozen=True)
class SigmoidCalibrator:
    """Platt scaling: ``expit(a * logit(p) + b)``."""

    a: float
    b: float
    method: str = "sigmoid"

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw probabilities ``p``."""
        return expit(self.a * logit(np.asarray(p, dtype=np.float64)) + self.b)

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
