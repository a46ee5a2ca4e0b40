"""Log a training run, register its model, and read versions back from the registry."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops.config import Settings
from churnops.errors import ModelNotFoundError, RegistryError
from churnops.registry.tracking import configure

if TYPE_CHECKING:
    from churnops.scoring.model import ScoringModel
    from churnops.training.run import TrainResult

CHAMPION = "champion"
CHALLENGER = "challenger"
HOLDOUT_ARTIFACT = "data/holdout.parquet"
REFERENCE_ARTIFACT = "data/reference.parquet"
REFERENCE_MAX_ROWS = 100_000
METRIC_TAG = "holdout_"


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version as the registry knows it."""

    name: str
    version: str
    run_id: str
    aliases: list[str]
    family: str | None
    threshold: float | None
    holdout: dict[str, float]
    created: str
    dataset_digest: str | None = None


@dataclass
class LoadedModel:
    """A ScoringModel loaded from the registry, with where it came from."""

    model: ScoringModel
    version: RegisteredVersion


def log_training(result: TrainResult, settings: Settings, source: str = "") -> RegisteredVersion:
    """Log ``result`` as an MLflow run and register its pyfunc model as a new version.

    The new version gets alias ``challenger``; the first version also becomes ``champion``.
    """
    import joblib
    import mlflow

    client = configure(settings)
    contract = result.contract
    with _quiet(), mlflow.start_run(run_name=f"train-{result.family}") as run:
        from churnops.registry.pyfunc import SCORING_MODEL, ChurnModel

        mlflow.set_tags(
            {
                "churnops.family": result.family,
                "churnops.dataset_digest": result.dataset_digest,
                "churnops.source": source,
                "churnops.calibration": result.calibration.method,
                "mlflow.source.git.commit": _git_commit(),
            }
        )
        mlflow.log_params(
            {**result.settings, **{f"model.{k}": v for k, v in result.params.items()}}
        )
        mlflow.log_params(
            {
                "threshold": round(result.model.threshold, 6),
                "calibration": result.calibration.method,
            }
        )
        mlflow.log_metrics({f"cv_{k}": v for k, v in result.cv.items()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in result.holdout.items()})
        mlflow.log_metrics({f"cv_best_{k}": v for k, v in result.family_scores.items()})
        mlflow.log_metrics(
            {f"calibration_brier_{k}": v for k, v in result.calibration.brier.items()}
        )
        mlflow.log_metric("train_seconds", result.seconds)
        dataset = mlflow.data.from_pandas(
            result.train_frame, name="training", targets=contract.target
        )
        mlflow.log_input(dataset, context="training")
        mlflow.log_artifacts(str(result.artifacts_dir), "evaluation")
        mlflow.log_dict(json.loads(contract.model_dump_json()), "contract.json")
        mlflow.log_dict(json.loads(result.validation.model_dump_json()), "validation.json")
        mlflow.log_table(result.leaderboard, "leaderboard.json")
        with tempfile.TemporaryDirectory() as tmp:
            tmp_dir = Path(tmp)
            result.holdout_frame.to_parquet(tmp_dir / "holdout.parquet", index=False)
            reference = result.train_frame
            if len(reference) > REFERENCE_MAX_ROWS:
                reference = reference.sample(REFERENCE_MAX_ROWS, random_state=settings.seed)
            reference.to_parquet(tmp_dir / "reference.parquet", index=False)
            mlflow.log_artifact(str(tmp_dir / "holdout.parquet"), "data")
            mlflow.log_artifact(str(tmp_dir / "reference.parquet"), "data")
            model_file = tmp_dir / "scoring_model.joblib"
            joblib.dump(result.model, model_file)
            example = _input_example(result)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ChurnModel(),
                artifacts={SCORING_MODEL: str(model_file)},
                signature=_signature(result, example),
                input_example=example,
                pip_requirements=_requirements(),
                registered_model_name=settings.model_name,
            )
    version = str(info.registered_model_version)
    tags = {
        "family": result.family,
        "threshold": f"{result.model.threshold:.6f}",
        "run_id": run.info.run_id,
        "dataset_digest": result.dataset_digest,
        **{f"{METRIC_TAG}{k}": f"{v:.6f}" for k, v in result.holdout.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    client.set_registered_model_alias(settings.model_name, CHALLENGER, version)
    if _alias_version(client, settings.model_name, CHAMPION) is None:
        from churnops.registry.promotion import record_champion

        record_champion(settings, client, None, version, "initial", "first registered version")
    return get_version(settings, version)


def list_versions(settings: Settings) -> list[RegisteredVersion]:
    """Return every version of the project's registered model, newest first."""
    client = configure(settings)
    found = client.search_model_versions(f"name = '{settings.model_name}'")
    versions = [_to_version(client, mv) for mv in found]
    return sorted(versions, key=lambda v: int(v.version), reverse=True)


def get_version(
    settings: Settings, version: str | None = None, alias: str | None = None
) -> RegisteredVersion:
    """Return one version by number or alias, or raise ModelNotFoundError."""
    from mlflow.exceptions import MlflowException

    client = configure(settings)
    name = settings.model_name
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, str(version))
        )
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise ModelNotFoundError(
            f"No {what} of model {name!r} in {settings.resolved_tracking_uri}. "
            "Train one with `churnops train`.",
            {"model": name, "alias": alias, "version": version},
        ) from exc
    return _to_version(client, mv)


def load_model(
    settings: Settings, alias: str | None = CHAMPION, version: str | None = None
) -> LoadedModel:
    """Load the ScoringModel of a registered version (by alias or number)."""
    import joblib
    import mlflow

    info = get_version(settings, version=version, alias=None if version else alias)
    uri = f"models:/{settings.model_name}/{info.version}"
    try:
        local = mlflow.artifacts.download_artifacts(f"{uri}/artifacts/scoring_model.joblib")
        model = joblib.load(local)
    except Exception as exc:  # corrupt or missing artifact: say which version
        raise RegistryError(f"Cannot load {uri}: {exc}") from exc
    return LoadedModel(model, info)


def model_uri(settings: Settings, alias: str = CHAMPION) -> str:
    """Return the ``models:/`` URI of a registered version, for MLflow's own tools."""
    info = get_version(settings, alias=alias)
    return f"models:/{settings.model_name}/{info.version}"


def spark_udf(spark: Any, settings: Settings, alias: str = CHAMPION) -> Any:
    """Return ``mlflow.pyfunc.spark_udf`` for a registered version: a column of probabilities.

    This is the plain MLflow route (pyfunc, per-batch schema checks); churnops' own Spark
    engine uses ``mapInPandas`` over the ScoringModel instead. Both load the same artifact.
    """
    import mlflow.pyfunc

    uri = model_uri(settings, alias)
    with _quiet():
        return mlflow.pyfunc.spark_udf(
            spark,
            uri,
            result_type="customer_id string, probability double, churn long",
            env_manager="local",
        )


def load_run_frame(
    settings: Settings, run_id: str, artifact: str = HOLDOUT_ARTIFACT
) -> pd.DataFrame:
    """Read a table logged with a training run (its holdout or its reference snapshot)."""
    import mlflow

    configure(settings)
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact)
    except Exception as exc:
        raise RegistryError(f"Run {run_id} has no artifact {artifact}: {exc}") from exc
    return pd.read_parquet(local)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's advice-level warnings (integer schema hints, cloudpickle, pip)."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _to_version(client: Any, mv: Any) -> RegisteredVersion:
    from datetime import UTC, datetime

    tags = dict(mv.tags or {})
    aliases = list(getattr(mv, "aliases", []) or [])
    if not aliases:  # search results omit aliases on some stores
        aliases = list(client.get_model_version(mv.name, mv.version).aliases or [])
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
        timespec="seconds"
    )
    return RegisteredVersion(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        aliases=sorted(aliases),
        family=tags.get("family"),
        threshold=float(tags["threshold"]) if "threshold" in tags else None,
        holdout={
            k.removeprefix(METRIC_TAG): float(v)
            for k, v in tags.items()
            if k.startswith(METRIC_TAG)
        },
        created=created,
        dataset_digest=tags.get("dataset_digest"),
    )


def _input_example(result: TrainResult) -> pd.DataFrame:
    contract = result.contract
    columns = ([contract.id] if contract.id else []) + contract.feature_names
    return result.holdout_frame[columns].head(3).reset_index(drop=True)


def _signature(result: TrainResult, example: pd.DataFrame) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    contract = result.contract
    inputs = []
    for column in example.columns:
        if column == contract.id:
            inputs.append(ColSpec("string", column, required=False))
            continue
        spec = contract.column(column)
        kind = "string"
        if spec.kind == "numeric":
            # MLflow refuses int64 -> float64 as unsafe, so whole-number columns are long.
            kind = "long" if spec.integer and spec.missing_rate == 0.0 else "double"
        if spec.kind == "boolean":
            kind = "long" if all(isinstance(v, int) for v in spec.levels or []) else "string"
        inputs.append(ColSpec(kind, column, required=spec.missing_rate == 0.0))
    outputs = [ColSpec("double", "probability"), ColSpec("long", "churn")]
    if contract.id:
        outputs.insert(0, ColSpec("string", contract.id, required=False))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = (
        "mlflow",
        "scikit-learn",
        "lightgbm",
        "xgboost",
        "pandas",
        "numpy",
        "pydantic",
        "joblib",
    )
    return [f"{p}=={version(p)}" for p in packages] + ["churnops"]


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
