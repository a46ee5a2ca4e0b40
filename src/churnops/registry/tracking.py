"""Point MLflow at the configured tracking store and experiment (nothing at import time)."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING

from churnops.config import Settings
from churnops.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _quiet_mlflow() -> None:
    # MLflow's SQLite store logs every Alembic step at INFO; a CLI user only needs errors.
    for name in ("alembic", "mlflow", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@lru_cache(maxsize=8)
def _experiment_id(tracking_uri: str, experiment: str, artifact_root: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = artifact_root if tracking_uri.startswith("sqlite:") else None
    return client.create_experiment(experiment, artifact_location=location)


def configure(settings: Settings) -> MlflowClient:
    """Set MLflow's tracking and registry URIs from settings; return a client.

    With the embedded default the store is SQLite under ``CHURNOPS_HOME`` and artifacts
    live beside it, so two project folders never share state.
    """
    _quiet_mlflow()
    import mlflow

    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:"):
        settings.ensure_home()
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow exports the URI as MLFLOW_TRACKING_URI for subprocesses; left there, every
    # Settings() built later in this process (tests, Dagster, the API) would inherit this
    # home's store instead of its own. Restore what the user had.
    if user_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = user_uri
    try:
        experiment_id = _experiment_id(
            uri, settings.experiment_name, settings.artifact_root.as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as exc:  # MLflow raises many types for an unreachable store
        raise RegistryError(f"Cannot reach the MLflow tracking store at {uri}: {exc}") from exc
    return mlflow.MlflowClient(uri, uri)
