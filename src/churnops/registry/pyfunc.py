"""The one model artifact: an MLflow pyfunc wrapping churnops' ScoringModel.

``mlflow.pyfunc.load_model``, ``mlflow models serve`` and ``mlflow.pyfunc.spark_udf`` all
work on it; churnops' own API and batch jobs load the same file through
:func:`churnops.registry.load_model` and skip pyfunc's per-call schema checks.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

SCORING_MODEL = "scoring_model"  # the artifact key of the pickled ScoringModel


class ChurnModel(mlflow.pyfunc.PythonModel):
    """Pyfunc adapter: a DataFrame of customers in, probability + churn (+ id) out."""

    def load_context(self, context: Any) -> None:
        """Load the pickled ScoringModel from the model's artifacts."""
        import joblib

        self.model = joblib.load(context.artifacts[SCORING_MODEL])

    # No type hints on purpose: MLflow 3 would try to derive a schema from them and warn.
    def predict(self, context, model_input, params=None):
        """Return a DataFrame with ``probability`` and ``churn`` (and the id if given)."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict_frame(frame)
