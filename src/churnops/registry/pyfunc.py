"""The MLflow pyfunc of a churnops model: code in the package, data in the artifact.

The model is logged with MLflow's models-from-code: :mod:`churnops.registry.pyfunc_code`
(a two-line file that names :class:`ChurnModel`) is the model's code, and the artifact
folder written by :func:`churnops.scoring.artifact.save_artifact` is its only data — so
``mlflow.pyfunc.load_model``, ``mlflow models serve`` and ``mlflow.pyfunc.spark_udf``
never unpickle anything. The file manifest (and HMAC, when signing) travels in the
model's ``model_config`` so MLflow's own tools verify the files too; churnops' API and
batch jobs verify against the copy in the registry's tags instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from churnops.registry.catalog import HMAC_KEY, MANIFEST_KEY, SCORING

CODE_PATH = Path(__file__).with_name("pyfunc_code.py")


class ChurnModel(mlflow.pyfunc.PythonModel):
    """Pyfunc adapter: a DataFrame of customers in, probability + churn (+ id) out."""

    def load_context(self, context: Any) -> None:
        """Load the model files, checking them against the manifest logged with them."""
        from churnops.config import Settings
        from churnops.scoring.artifact import load_artifact

        config = context.model_config or {}
        manifest = json.loads(config[MANIFEST_KEY]) if MANIFEST_KEY in config else None
        key = Settings().model_signing_key
        self.model = load_artifact(
            context.artifacts[SCORING],
            manifest,
            key.get_secret_value().encode() if key is not None else None,
            config.get(HMAC_KEY),
        )

    # ``pd.DataFrame`` is the one input hint MLflow 3 takes without deriving a schema or
    # validating rows (no hint at all makes it warn at import): the logged ``Any``
    # signature stays in charge, and the contract's rules judge every value.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Return a DataFrame with ``probability`` and ``churn`` (and the id if given)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict_frame(frame)
