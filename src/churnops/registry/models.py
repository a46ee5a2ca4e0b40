"""Log a training run, register its model, and read versions back from the registry."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops.config import Settings
from churnops.data.sources import read_parquet
from churnops.errors import ModelIntegrityError, ModelNotFoundError, RegistryError
from churnops.redact import redact
from churnops.registry.catalog import (
    FORMAT_KEY,
    HMAC_KEY,
    MANIFEST_KEY,
    SCORING,
    Catalog,
    VersionRecord,
    catalog_for,
    local_path,
)
from churnops.registry.tracking import configure

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import RunInfo

    from churnops.progress import ProgressFn
    from churnops.scoring.model import ScoringModel
    from churnops.training.run import TrainResult

CHAMPION = "champion"
CHALLENGER = "challenger"
HOLDOUT_ARTIFACT = "data/holdout.parquet"
REFERENCE_ARTIFACT = "data/reference.parquet"
REFERENCE_MAX_ROWS = 100_000
METRIC_TAG = "holdout_"
LEADERBOARD_ARTIFACT = "leaderboard.json"
PARENT_TAG = "mlflow.parentRunId"
TRIAL_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "fail": "FAILED"}
"""The MLflow run status of a trial's child run, by Optuna state (pruned = stopped early)."""


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
    """A ScoringModel loaded from the registry, with where it came from.

    ``files`` is the verified artifact folder it was read from and ``manifest`` /
    ``signature`` what it was verified against (the last-known-good copy reuses them).
    """

    model: ScoringModel
    version: RegisteredVersion
    files: Path
    manifest: dict[str, str]
    signature: str | None = None


def log_training(
    result: TrainResult,
    settings: Settings,
    source: str = "",
    progress: ProgressFn | None = None,
) -> RegisteredVersion:
    """Log ``result`` as an MLflow run and register its pyfunc model as a new version.

    The run is named after the winning family and the time (``train lightgbm 2026-11-29
    15:40``); every tuning trial becomes a child run and a row of its leaderboard table.
    The new version gets alias ``challenger``; the first version also becomes ``champion``.
    """
    from churnops.progress import step

    with step(progress, "open MLflow"):  # importing MLflow and a new store's migrations
        import mlflow

        client = configure(settings)
    contract = result.contract
    name = f"train {result.family} {time.strftime('%Y-%m-%d %H:%M')}"
    with _quiet(), mlflow.start_run(run_name=name) as run:
        from churnops.registry.pyfunc import CODE_PATH
        from churnops.scoring.artifact import save_artifact

        with step(progress, "log run to MLflow"):
            mlflow.set_tags(
                {
                    "churnops.family": result.family,
                    "churnops.dataset_digest": result.dataset_digest,
                    "churnops.source": redact(source),  # may be `--db URL#table`
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
            mlflow.log_table(result.leaderboard, LEADERBOARD_ARTIFACT)
            _log_trials(client, run.info, result)
        with step(progress, "log model"), tempfile.TemporaryDirectory() as tmp:
            tmp_dir = Path(tmp)
            result.holdout_frame.to_parquet(tmp_dir / "holdout.parquet", index=False)
            reference = result.train_frame
            if len(reference) > REFERENCE_MAX_ROWS:
                reference = reference.sample(REFERENCE_MAX_ROWS, random_state=settings.seed)
            reference.to_parquet(tmp_dir / "reference.parquet", index=False)
            mlflow.log_artifact(str(tmp_dir / "holdout.parquet"), "data")
            mlflow.log_artifact(str(tmp_dir / "reference.parquet"), "data")
            manifest = save_artifact(result.model, tmp_dir / SCORING)
            integrity = _integrity_tags(manifest, settings)
            example = _input_example(result)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(CODE_PATH),
                artifacts={SCORING: str(tmp_dir / SCORING)},
                model_config=integrity,
                signature=_signature(result, example),
                input_example=example,
                pip_requirements=_requirements(),
                registered_model_name=settings.model_name,
            )
    with step(progress, "register version"):
        version = str(info.registered_model_version)
        tags = {
            "family": result.family,
            "threshold": f"{result.model.threshold:.6f}",
            "run_id": run.info.run_id,
            "dataset_digest": result.dataset_digest,
            **{f"{METRIC_TAG}{k}": f"{v:.6f}" for k, v in result.holdout.items()},
            **integrity,
        }
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, version, key, value)
        client.set_registered_model_alias(settings.model_name, CHALLENGER, version)
        from churnops.registry.lock import champion_lock
        from churnops.registry.promotion import record_champion

        with champion_lock(settings) as session:  # two first registrations: one champion
            if _catalog(settings).alias(settings.model_name, CHAMPION) is None:
                reason = "first registered version"
                record_champion(session, settings, client, None, version, "initial", reason)
        return get_version(settings, version)


def _log_trials(client: MlflowClient, parent: RunInfo, result: TrainResult) -> None:
    """Log every tuning trial as a child run of ``parent``, after the fact.

    Each child costs three calls to the store (create with its tags, one batch of params
    and metrics, end at the trial's own end time): ~20 ms on the embedded SQLite store, so
    the default 12 trials x 3 families add ~0.7 s to logging a run.
    """
    from mlflow.entities import Metric, Param

    score = f"cv_{result.settings['metric']}"
    for trial in result.trials:
        started = int(trial.started * 1000)
        ended = started + int(trial.seconds * 1000)
        child = client.create_run(
            parent.experiment_id,
            start_time=started,
            run_name=f"{trial.family} trial {trial.number}",
            tags={
                PARENT_TAG: parent.run_id,
                "churnops.family": trial.family,
                "churnops.trial_state": trial.state,
                "churnops.chosen": str(result.is_chosen(trial)).lower(),
            },
        )
        metrics = [Metric("seconds", trial.seconds, ended, 0)]
        if trial.score is not None:
            metrics.append(Metric(score, trial.score, ended, 0))
        params = [Param(key, str(value)) for key, value in trial.params.items()]
        client.log_batch(child.info.run_id, metrics=metrics, params=params)
        client.set_terminated(child.info.run_id, TRIAL_STATUS[trial.state], end_time=ended)


def list_versions(settings: Settings) -> list[RegisteredVersion]:
    """Return every version of the project's registered model, newest first."""
    catalog = _catalog(settings)
    return [_to_version(r) for r in catalog.versions(settings.model_name)]


def get_version(
    settings: Settings, version: str | None = None, alias: str | None = None
) -> RegisteredVersion:
    """Return one version by number or alias, or raise ModelNotFoundError."""
    return _to_version(_record(settings, version, alias))


def load_model(
    settings: Settings, alias: str | None = CHAMPION, version: str | None = None
) -> LoadedModel:
    """Load the ScoringModel of a registered version (by alias or number), verified.

    Every file of the artifact is checked against the SHA-256 manifest recorded in the
    version's tags (and its HMAC when a signing key is configured) before it is parsed;
    a mismatch raises :class:`ModelIntegrityError` naming the file. With a SQL tracking
    store and local artifacts this imports no MLflow.
    """
    from churnops.scoring.artifact import load_artifact

    record = _record(settings, version, None if version else alias)
    info = _to_version(record)
    uri = f"models:/{settings.model_name}/{info.version}"
    try:
        manifest, signature = integrity_of(record.tags)
        folder = _scoring_folder(settings, record)
        model = load_artifact(folder, manifest, signing_key(settings), signature)
    except RegistryError as exc:  # name the version; keep the class (integrity or not)
        raise type(exc)(f"Cannot load {uri}: {exc.message}", exc.details) from exc
    return LoadedModel(model, info, folder, manifest, signature)


def integrity_of(tags: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """Return (manifest, HMAC or None) recorded in a version's tags.

    Raises ModelIntegrityError for a version registered without a manifest (a model
    from before the data-only format, or one registered by hand): it cannot be verified,
    so it is not loaded.
    """
    from churnops.scoring.artifact import FORMAT_VERSION

    raw = tags.get(MANIFEST_KEY)
    if not raw:
        raise ModelIntegrityError(
            f"The version has no {MANIFEST_KEY} tag (registered before model format 1, or "
            "not by churnops): its files cannot be verified. Retrain with `churnops train`."
        )
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise ModelIntegrityError(f"The version's {MANIFEST_KEY} tag is not valid: {exc}") from exc
    if tags.get(FORMAT_KEY) not in (None, str(FORMAT_VERSION)):
        raise RegistryError(
            f"The version is model format {tags.get(FORMAT_KEY)}; this churnops reads "
            f"format {FORMAT_VERSION} (see docs/model-format.md)."
        )
    return {str(k): str(v) for k, v in manifest.items()}, tags.get(HMAC_KEY)


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

    configure(settings)  # MLflow resolves the models:/ URI against the configured registry
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
    """Read a table logged with a training run (its holdout or its reference snapshot).

    With a SQL tracking store and local artifacts the file is read in place (no MLflow
    import: ~2 s of the dashboard's customer page); otherwise MLflow downloads it.
    """
    from churnops.registry.catalog import local_path

    root = local_path(_catalog(settings).artifact_root(run_id))
    if root is not None and (root / artifact).is_file():
        return read_parquet(root / artifact)
    import mlflow

    configure(settings)
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact)
    except Exception as exc:
        raise RegistryError(f"Run {run_id} has no artifact {artifact}: {exc}") from exc
    return read_parquet(local)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow while we call it: its advice-level warnings (integer schema hints,
    pip) and the lines it prints itself ("Successfully registered model ...", "Created
    version ..."), which our own output already says.

    MLflow's own switch for its printed lines is counted: MLflow switches it off and on
    around some of its imports too, and a plain flag would be switched back on by them.
    """
    from mlflow.utils.autologging_utils import MlflowEventsAndWarningsBehaviorGlobally

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    muted = MlflowEventsAndWarningsBehaviorGlobally(
        disable_event_logs=True, disable_warnings=False, reroute_warnings=False
    )
    try:
        with muted, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _catalog(settings: Settings) -> Catalog:
    return catalog_for(settings.resolved_tracking_uri)


def _record(settings: Settings, version: str | None, alias: str | None) -> VersionRecord:
    """Return a version's record by number or alias, or raise ModelNotFoundError."""
    catalog = _catalog(settings)
    name = settings.model_name
    try:
        number = catalog.alias(name, alias) if alias else str(version)
        record = catalog.version(name, number) if number is not None else None
    except Exception as exc:  # SQLAlchemy and MLflow raise many types for a bad store
        raise RegistryError(
            f"Cannot read the model registry at {settings.resolved_tracking_uri}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if record is None:
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise ModelNotFoundError(
            f"No {what} of model {name!r} in {settings.resolved_tracking_uri}. "
            "Train one with `churnops train`.",
            {"model": name, "alias": alias, "version": version},
        )
    return record


def _scoring_folder(settings: Settings, record: VersionRecord) -> Path:
    """Return the local folder of a version's churnops files (downloaded only when remote).

    MLflow 3 records where a logged model's files are (``storage_location``, e.g.
    ``.../mlartifacts/1/models/m-<id>/artifacts``); the pyfunc keeps our folder under
    ``artifacts/scoring`` there. Local stores are read in place; anything else is
    downloaded by MLflow into a temporary folder.
    """
    for location in (record.storage_location, record.source):
        local = local_path(location)
        if local is not None and (local / "artifacts" / SCORING).is_dir():
            return local / "artifacts" / SCORING
    import mlflow

    configure(settings)
    uri = f"models:/{record.name}/{record.version}"
    try:
        target = tempfile.mkdtemp(prefix="churnops-model-")
        return Path(
            mlflow.artifacts.download_artifacts(f"{uri}/artifacts/{SCORING}", dst_path=target)
        )
    except Exception as exc:  # missing or unreachable artifact store: say which version
        raise RegistryError(f"Cannot download the files of {uri}: {exc}") from exc


def signing_key(settings: Settings) -> bytes | None:
    """Return the configured model signing key as bytes (None when signing is off)."""
    key = settings.model_signing_key
    return key.get_secret_value().encode() if key is not None else None


def _integrity_tags(manifest: dict[str, str], settings: Settings) -> dict[str, str]:
    """Return the tags (and pyfunc ``model_config``) that let every load verify the files."""
    from churnops.scoring.artifact import FORMAT_VERSION, manifest_json, sign_manifest

    tags = {MANIFEST_KEY: manifest_json(manifest), FORMAT_KEY: str(FORMAT_VERSION)}
    key = signing_key(settings)
    if key is not None:
        tags[HMAC_KEY] = sign_manifest(manifest, key)
    return tags


def _to_version(record: VersionRecord) -> RegisteredVersion:
    from datetime import UTC, datetime

    tags = record.tags
    created = datetime.fromtimestamp(record.created_ms / 1000, UTC).isoformat(timespec="seconds")
    return RegisteredVersion(
        name=record.name,
        version=record.version,
        run_id=record.run_id,
        aliases=sorted(record.aliases),
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
    """Declare every input column as ``Any`` and optional: the contract's rules judge them.

    A typed schema would make MLflow refuse or coerce values before the model sees them
    ("12.5" in a ``double`` column, a float in a ``long`` one), so ``mlflow.pyfunc`` and
    ``mlflow models serve`` would judge a record differently from the API and batch
    scoring. The model answers refused rows in its ``error`` column instead.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    contract = result.contract
    inputs = [ColSpec(AnyType(), column, required=False) for column in example.columns]
    # A row the contract's rules refuse has no probability or flag and says why in ``error``.
    outputs = [
        ColSpec("double", "probability", required=False),
        ColSpec("long", "churn", required=False),
        ColSpec("string", "error", required=False),
    ]
    if contract.id:
        outputs.insert(0, ColSpec("string", contract.id, required=False))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = (
        "mlflow",
        "lightgbm",
        "xgboost",
        "catboost",
        "pandas",
        "numpy",
        "pydantic",
        "numba",
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
