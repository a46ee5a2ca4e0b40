"""One customer's score taken apart: every feature's log-odds contribution, with its value.

Batch runs store the top few reasons of the riskiest customers; a person looking at one
customer wants the whole picture — from the model's base log-odds, each feature's push up
or down, to the final score — as the dashboard's waterfall shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from churnops.scoring.predictor import Predictor


def explain_record(predictor: Predictor, record: Mapping[str, Any]) -> dict[str, Any]:
    """Score ``record`` and return its base log-odds and every feature's contribution.

    ``contributions`` are ordered by absolute size, each ``{feature, value, contribution}``
    with the value as sent; they sum, with ``base_margin``, to the model's raw log-odds
    (before calibration, which maps that to ``score``). Raises ScoringInputError for a
    record the contract refuses, as the API does.
    """
    score, row = predictor.score_one(record)
    model = predictor.model
    grouped, bias = model.contributions(np.asarray([row], dtype=np.float64))
    names = model.encoder.source_columns
    order = np.argsort(-np.abs(grouped[0]))
    return {
        "score": float(score),
        "base_margin": float(bias[0]),
        "threshold": float(model.threshold),
        "contributions": [
            {
                "feature": names[j],
                "value": record.get(names[j]),
                "contribution": round(float(grouped[0, j]), 6),
            }
            for j in order
        ],
    }
