"""The single-record fast path: one encoded row to one calibrated probability in microseconds.

Why a separate entry point: a matrix API costs more than the model for one row (LightGBM's
wrappers validate and allocate, a DataFrame costs more than the trees). So one row takes
each family's cheapest exact route to its margin — one compiled call over the family's
packed arrays (:mod:`churnops.scoring.one_row`: the tree walks, the linear and spline
loops, a whole blend at once), or the family's own library when its arithmetic is not
compiled — and then the *same* compiled scalar function a batch applies to each of its
margins (:func:`churnops.scoring.calibration.finish_one`: sigmoid, then the calibrator).

Exactness is by construction, and tested: each family's ``margin_one`` is the batch
kernel's number for that row, and everything after it is elementwise, so
:meth:`FastScorer.one` equals :meth:`FastScorer.many` (which *is*
:meth:`ScoringModel.probabilities`: there is one batch arithmetic) to the bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from churnops.scoring.calibration import finish_one, finishing
from churnops.scoring.model import ScoringModel


class FastScorer:
    """Exact, fast probabilities for encoded rows of one :class:`ScoringModel`."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self.threshold = float(model.threshold)
        self._margin_one = model.estimator.margin_one
        self._finishing = finishing(model.calibrator)

    def one(self, row: Sequence[float]) -> float:
        """Return the calibrated churn probability of one encoded row."""
        return float(finish_one(self._margin_one(row), *self._finishing))

    def many(self, X: np.ndarray) -> np.ndarray:
        """Return calibrated churn probabilities of an encoded matrix."""
        return self.model.probabilities(X)
