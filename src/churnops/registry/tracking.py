"""Point MLflow at the configured tracking store and experiment (nothing at import time)."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from churnops.config import Settings
from churnops.data.storage import existing_bucket, is_object_url
from churnops.errors import ChurnopsError, RegistryError

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
def _experiment_id(tracking_uri: str, experiment: str, artifact_location: str | None) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    if is_object_url(artifact_location):
        # Checked once, here: a missing bucket or refused credentials fail before a
        # training run rather than at its first upload, minutes later.
        existing_bucket(artifact_location)  # type: ignore[arg-type]
    return client.create_experiment(experiment, artifact_location=artifact_location)


def artifact_location(settings: Settings) -> str | None:
    """Return where a new experiment keeps its artifacts (None: the tracking server decides).

    ``artifact_location`` when set (a folder or ``s3://bucket/prefix``: MLflow's own S3
    store then writes there with boto3, which reads the same AWS_* variables), else a
    folder under home for the embedded SQLite store. MLflow fixes an experiment's
    location when it creates the experiment: changing the setting later moves nothing.
    """
    configured = settings.artifact_location
    if configured is None:
        if not settings.resolved_tracking_uri.startswith("sqlite:"):
            return None
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        return settings.artifact_root.as_uri()
    if is_object_url(configured):
        return configured.rstrip("/")
    folder = Path(configured).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


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
    location = artifact_location(settings)
    try:
        experiment_id = _experiment_id(uri, settings.experiment_name, location)
        mlflow.set_experiment(experiment_id=experiment_id)
    except ChurnopsError:
        raise
    except Exception as exc:  # MLflow raises many types for an unreachable store
        raise RegistryError(f"Cannot reach the MLflow tracking store at {uri}: {exc}") from exc
    return mlflow.MlflowClient(uri, uri)
