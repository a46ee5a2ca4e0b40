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


EXPORTED_URIS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _quiet_mlflow() -> None:
    # MLflow's SQLite store logs every Alembic step at INFO; a CLI user only needs errors.
    for name in ("alembic", "mlflow", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With an HTTP tracking server MLflow writes "View run ... at: <url>" to stdout when a
    # run ends, which breaks `--json` (stdout is exactly one JSON object).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


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
    exported = {key: os.environ.get(key) for key in EXPORTED_URIS}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow exports both URIs as env vars for subprocesses; left there, every Settings()
    # built later in this process (tests, Dagster, the API) and every subprocess (`mlflow
    # models serve`) would inherit this home's store instead of its own. Restore the user's.
    for key, value in exported.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        experiment_id = _experiment_id(
            uri, settings.experiment_name, settings.artifact_root.as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as exc:  # MLflow raises many types for an unreachable store
        raise RegistryError(f"Cannot reach the MLflow tracking store at {uri}: {exc}") from exc
    return mlflow.MlflowClient(uri, uri)
