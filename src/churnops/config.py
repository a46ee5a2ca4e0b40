"""Settings: ``churnops.yaml`` in the working directory plus ``CHURNOPS_*`` env vars.

Read once through :func:`get_settings`. Nothing happens at import time: folders are made
by :meth:`Settings.ensure_home` when a stage first needs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from churnops.errors import ConfigError
from churnops.redact import redact

Metric = Literal["roc_auc", "pr_auc", "f1"]
ThresholdStrategy = Literal["f1", "profit"]


def _path_or_url(value: Any) -> Any:
    """Keep a URL (``s3://bucket/key``) as text: a ``Path`` would fold its ``//`` away."""
    if isinstance(value, str) and "://" not in value:
        return Path(value)
    return value


PathOrUrl = Annotated[Path | str, BeforeValidator(_path_or_url)]


class Settings(BaseSettings):
    """Every knob churnops reads; env vars win over ``churnops.yaml``, which wins over defaults."""

    model_config = SettingsConfigDict(
        env_prefix="CHURNOPS_",
        yaml_file="churnops.yaml",
        extra="ignore",
        populate_by_name=True,
    )

    home: Path = Field(Path(".churnops"), description="Where all local state lives.")
    database_url: str | None = Field(
        None, description="Operational store; default SQLite under home."
    )
    tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CHURNOPS_TRACKING_URI"),
        description="MLflow tracking store; default SQLite under home.",
    )
    artifact_location: str | None = Field(
        None,
        description="Where MLflow keeps the experiment's artifacts (models, reports): a "
        "folder or s3://bucket/prefix (credentials and endpoint from the AWS_* variables); "
        "default home/mlartifacts with a local store. Read when the experiment is created.",
    )
    redis_url: str | None = Field(
        None, description="Redis shared by every API worker and replica for rate-limit buckets."
    )
    sqlite_busy_seconds: float = Field(
        60.0,
        gt=0.0,
        description="How long a write to an SQLite store waits for another writer's lock (a "
        "batch swap, a key being created) before failing with 'database is locked'.",
    )

    model_name: str = Field(
        "churn-model",
        description="The registered model (MLflow) every command trains into and reads.",
    )
    experiment_name: str = Field(
        "churnops", description="The MLflow experiment training runs are logged to."
    )
    model_signing_key: SecretStr | None = Field(
        None,
        description="HMAC key: registration signs each model's file manifest, and every load "
        "then requires a valid signature (see docs/model-format.md).",
    )

    seed: int = Field(42, description="Seed of the holdout split, the folds and the tuner.")
    holdout: float = Field(
        0.2, gt=0.0, lt=0.9, description="Share of rows kept aside for the holdout evaluation."
    )
    cv_folds: int = Field(5, ge=2, le=20, description="Cross-validation folds used while tuning.")
    trials: int = Field(
        12, ge=1, description="Optuna trials per model family (catboost runs half as many)."
    )
    families: list[str] = Field(
        ["logistic", "spline", "lightgbm", "catboost"],
        description="Model families to tune: logistic, spline, lightgbm, xgboost, catboost "
        "(xgboost is not tuned by default, because on the demo and call-detail tables "
        "catboost scored better in less time and the blend gained nothing from xgboost).",
    )
    ensemble: bool = Field(
        True,
        description="Also blend the tuned families (weights fitted on out-of-fold "
        "predictions); the blend is kept only when its CV score beats the best family's.",
    )
    metric: Metric = Field(
        "roc_auc", description="Primary metric: selects the family and gates promotion."
    )

    threshold_strategy: ThresholdStrategy = Field(
        "f1", description="How the decision threshold is chosen: best F1, or expected profit."
    )
    offer_cost: float = Field(
        10.0, ge=0.0, description="Profit threshold and campaign planner: cost of one offer."
    )
    customer_value: float = Field(
        500.0,
        ge=0.0,
        description="Profit threshold and campaign planner: value of a kept customer.",
    )
    customer_value_column: str | None = Field(
        None, description="Column holding each customer's value (instead of one constant)."
    )
    acceptance_rate: float = Field(
        0.3, ge=0.0, le=1.0, description="Share of contacted churners an offer keeps."
    )

    min_delta: float = Field(
        0.005, description="Promotion gate: the challenger must beat the champion by this much."
    )

    # Online scoring service (``churnops serve``); see docs/serving.md.
    serve_host: str = Field("127.0.0.1", description="Bind address of `churnops serve`.")
    serve_port: int = Field(8000, ge=0, le=65535, description="Port of `churnops serve`.")
    serve_workers: int = Field(1, ge=1, description="Uvicorn worker processes.")
    serve_no_auth: bool = Field(False, description="Insecure: accept requests without a key.")
    serve_batch_limit: int = Field(1000, ge=1, description="Customers per batch request.")
    serve_max_body_bytes: int = Field(2_000_000, ge=1024, description="Larger bodies get 413.")
    serve_timeout_seconds: float = Field(10.0, gt=0, description="Per-request time budget.")
    serve_rate_limit: float = Field(100.0, ge=0, description="Requests/s per key; 0 = off.")
    serve_rate_burst: int = Field(200, ge=1, description="Token bucket size per key.")
    serve_canary_share: float = Field(0.0, ge=0.0, le=1.0, description="Share to challenger.")
    serve_shadow: bool = Field(False, description="Also score the challenger, log only.")
    serve_poll_seconds: float = Field(0.0, ge=0, description="Alias polling; 0 = off.")
    serve_log_sample: float = Field(0.05, ge=0.0, le=1.0, description="Prediction log share.")
    serve_audit: bool = Field(True, description="Write an audit row for every `/v1/` call.")
    serve_access_log: bool = Field(True, description="JSON access-log lines on stderr.")
    serve_key_cache_seconds: float = Field(5.0, ge=0, description="Revocations apply after.")
    serve_ssl_certfile: Path | None = Field(
        None, description="TLS certificate (HTTPS on the same port)."
    )
    serve_ssl_keyfile: Path | None = Field(None, description="TLS private key.")
    serve_max_json_depth: int = Field(
        32, ge=3, le=256, description="JSON bodies nested deeper than this get 422."
    )
    serve_ip_rate_limit: float = Field(
        1000.0, ge=0, description="Requests/s per client address, before the key is checked."
    )
    serve_ip_rate_burst: int = Field(2000, ge=1, description="Token bucket size per address.")
    serve_rate_limit_on_redis_error: Literal["local", "open", "closed"] = Field(
        "local",
        description="While Redis is unreachable: limit in this process (local), not at all "
        "(open), or refuse with 503 (closed).",
    )
    serve_inline_batch: int = Field(
        1000,
        ge=0,
        description="Batches of at most this many customers are scored on the event loop "
        "(a hop to a thread costs more than scoring them); larger ones in scoring threads.",
    )
    serve_max_concurrent_batches: int = Field(
        2, ge=1, description="Batch requests scored at once, in threads off the event loop."
    )
    serve_batch_queue: int = Field(
        32, ge=0, description="Batch requests that may wait for a scoring thread; more get 503."
    )
    serve_drain_seconds: float = Field(
        5.0, ge=0, description="On SIGTERM, /readyz answers 503 this long before the port closes."
    )
    serve_trusted_hosts: list[str] = Field(
        [], description="Accepted Host headers (e.g. api.example.com, *.example.com); [] = any."
    )

    # The retention dashboard (``churnops dashboard``); see docs/dashboard.md.
    dashboard_host: str = Field("127.0.0.1", description="Bind address of `churnops dashboard`.")
    dashboard_port: int = Field(8501, ge=0, le=65535, description="Port of `churnops dashboard`.")

    # Monitoring: drift thresholds, retrain triggers, report (see docs/monitoring.md).
    psi_warn: float = Field(0.1, ge=0.0, description="PSI at which a feature is worth a look.")
    psi_alert: float = Field(0.25, ge=0.0, description="PSI at which a feature has shifted.")
    psi_bins: int = Field(10, ge=2, le=100, description="Reference-quantile bins for PSI.")
    drift_p_value: float = Field(0.05, gt=0.0, lt=1.0, description="KS/chi-square level.")
    drift_share_alert: float = Field(
        0.3, gt=0.0, le=1.0, description="Share of drifted features that triggers retraining."
    )
    key_features: list[str] | None = Field(
        None,
        description="Features whose PSI alert alone triggers retraining; None = the "
        "champion's top `key_features_top` features by mean |SHAP|.",
    )
    key_features_top: int = Field(
        3, ge=0, description="How many top features are key when `key_features` is None."
    )
    f1_floor: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Retrain below this F1 (absolute); None = relative to the champion's "
        "holdout F1, `f1_max_drop` below it.",
    )
    f1_max_drop: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="With no absolute `f1_floor`: retrain when F1 falls more than this "
        "below the champion's holdout F1.",
    )
    retrain_after_days: int = Field(30, ge=1, description="Retrain a champion this old.")
    segment_columns: list[str] | None = Field(
        None,
        description="Columns whose levels get their own metrics; None = the contract's "
        "categorical (at most 12 levels) and boolean features.",
    )
    date_column: str | None = Field(
        None,
        description="The time column of performance windows; None = the contract's datetime "
        "column, else a datetime column of the monitored table, else the run's date.",
    )
    window: str = Field("W", description="Pandas period for performance windows (D, W, M).")
    report_sample_rows: int = Field(
        10_000, ge=100, description="Rows per side the Evidently report sees."
    )
    reports_location: str | None = Field(
        None,
        description="Where monitoring HTML reports go: a folder or s3://bucket/prefix; "
        "default home/reports for `pipeline run`, none for `monitor` without --report.",
    )
    pipeline_source: PathOrUrl | None = Field(
        None, description="Customer table `pipeline run` reads: a file or s3://bucket/key."
    )
    pipeline_target: str = Field(
        "churn", description="Label column when there is no champion contract to take it from."
    )
    pipeline_id: str | None = Field(
        "customer_id", description="Id column when there is no champion contract to take it from."
    )

    batch_chunk_rows: int = Field(
        100_000, ge=1, description="Rows per batch-scoring chunk; memory is bounded by it."
    )
    max_rejected_share: float = Field(
        0.05, ge=0.0, le=1.0, description="A batch run fails when more rows than this are invalid."
    )
    reasons_top: int = Field(
        10_000, ge=0, description="Batch runs store reasons for at least the N riskiest customers."
    )
    score_segment_columns: list[str] | None = Field(
        None,
        description="Columns a batch run stores as each customer's segment (the dashboard's "
        "filters): categorical (at most 12 levels) or boolean features of the champion's "
        "contract, at most 6; None = the first 6 such columns in contract order.",
    )
    spark_master: str = Field("local[*]", description="Spark master for --engine spark.")
    spark_driver_memory: str = Field(
        "",
        pattern=r"^(\d+[kmgt]?)?$",
        description="JVM heap of the Spark driver (and of its executors in local[N] mode), "
        "e.g. 8g; empty = Spark's default (1g). Raise it when a Spark step fails with "
        "OutOfMemoryError.",
    )
    batch_stale_minutes: float = Field(
        30.0,
        gt=0.0,
        description="A running batch run whose heartbeat is older than this is taken as dead "
        "(killed on another host) and closed as abandoned by the next run.",
    )
    batch_test_pause_at: str = Field(
        "",
        description="Testing hook: a point of a batch run ('chunk N' or 'swap') to pause at, "
        "announced on stderr, so crash-safety tests can kill the run there.",
    )
    batch_test_pause: float = Field(60.0, ge=0.0, description="Seconds to pause there.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFileSettingsSource(settings_cls),
            YamlConfigSettingsSource(settings_cls),
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Mask URL passwords: settings are printed in tracebacks, debug logs and Dagster."""
        for name, value in super().__repr_args__():
            yield name, redact(value) if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        """Return the operational store URL (SQLite under home unless configured)."""
        return self.database_url or f"sqlite:///{(self.home / 'churnops.db').resolve()}"

    @property
    def resolved_tracking_uri(self) -> str:
        """Return the MLflow tracking URI (SQLite under home unless configured)."""
        return self.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Return where MLflow artifacts go when the tracking store is local."""
        return (self.home / "mlartifacts").resolve()

    def ensure_home(self) -> Path:
        """Create the home folder on first use and return it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


FILE_SUFFIX = "_FILE"


class SecretFileSettingsSource(PydanticBaseSettingsSource):
    """``CHURNOPS_<SETTING>_FILE=/path``: a setting read from a file (Docker/Kubernetes secrets).

    Secrets are mounted as files (``/run/secrets/...``) so they stay out of the process
    environment, which ``kubectl describe``, ``/proc/<pid>/environ``, crash reports and
    child processes all expose. Every setting accepts the variant, not only the secret ones,
    so no list has to be kept in step with the fields. The file's content is the value,
    less its trailing newline (``echo pw > file`` and editors add one); list settings take
    JSON, as their env vars do.

    Precedence sits between the env vars and ``churnops.yaml``; setting a variable and its
    ``_FILE`` variant to different values is refused rather than ranked, because a
    deployment that does it has two sources of truth for one secret and would silently use
    one of them.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` reads every field itself (the base class requires it)."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        # Case-insensitive like the env source (case_sensitive is off).
        environ = {key.upper(): value for key, value in self.environ.items()}
        prefix = str(self.config.get("env_prefix", "")).upper()
        fields = self.settings_cls.model_fields
        values: dict[str, Any] = {}
        for name, field in fields.items():
            variable = f"{prefix}{name.upper()}{FILE_SUFFIX}"
            if variable not in environ or f"{name}{FILE_SUFFIX.lower()}" in fields:
                continue  # unset, or the name of another setting (``x_file``) itself
            path = environ[variable]
            text = read_secret_file(variable, path)
            both = [n for n in direct_env_names(name, field, prefix) if n in environ]
            # The same value twice is one source: a churnops parent process that resolved
            # its settings passes them on to its children (dashboard, workers).
            if both and environ[both[0]] != text:
                raise ConfigError(
                    f"Both {both[0]} and {variable} are set, to different values: give the "
                    f"setting one way only (unset {both[0]} to read it from {path}).",
                    {"variables": [both[0], variable]},
                )
            if self.field_is_complex(field):
                try:
                    values[name] = json.loads(text)
                except ValueError as exc:
                    raise ConfigError(
                        f'{variable}={path}: {name} takes JSON (e.g. ["a", "b"]); '
                        f"the file does not parse ({exc.msg}).",
                        {"variable": variable, "path": path},
                    ) from exc
            else:
                values[name] = text
        return values


def direct_env_names(name: str, field: FieldInfo, prefix: str = "CHURNOPS_") -> list[str]:
    """Return the env vars that set ``name`` directly (its aliases, else prefix + name)."""
    choices = getattr(field.validation_alias, "choices", None)
    if choices:
        return [str(choice).upper() for choice in choices]
    if isinstance(field.validation_alias, str):
        return [field.validation_alias.upper()]
    return [f"{prefix}{name.upper()}"]


def read_secret_file(variable: str, path: str) -> str:
    """Return a secret file's text without its trailing newline, or raise a ConfigError.

    The error names the variable and the path (never the content), so a wrong mount or a
    missing Secret key is found from the message alone.
    """
    if not path:
        raise ConfigError(f"{variable} is set but empty: it should name a file.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"{variable}={path}: cannot read the file ({why}).",
            {"variable": variable, "path": path},
        ) from exc
    text = text.rstrip("\r\n")
    if not text:
        raise ConfigError(
            f"{variable}={path}: the file is empty.", {"variable": variable, "path": path}
        )
    return text


@dataclass(frozen=True)
class SettingGroup:
    """Settings documented together: ``churnops init`` and the configuration reference."""

    title: str
    note: str
    page: str | None  # the docs page (under docs/) that explains them
    names: tuple[str, ...]


# Where each group starts; it runs until the next start (related fields are declared together).
_GROUP_STARTS: dict[str, tuple[str, str, str | None]] = {
    "home": (
        "Where state lives",
        "With none of these set, everything lives under ./.churnops/.",
        None,
    ),
    "model_name": ("Registry", "The MLflow registered model and experiment.", "model-format.md"),
    "seed": ("Training", "Tuning budget, folds and the selection metric.", "concepts.md"),
    "threshold_strategy": (
        "Decision threshold and campaign value",
        "Where a customer counts as at risk, and what keeping one is worth.",
        "dashboard.md",
    ),
    "min_delta": ("Promotion", "The gate a challenger must pass.", "concepts.md"),
    "serve_host": ("Serving", "`churnops serve` options override these.", "serving.md"),
    "dashboard_host": ("Dashboard", "`churnops dashboard` options override these.", "dashboard.md"),
    "psi_warn": (
        "Monitoring",
        "Settings that default to none are derived from the data and the champion; set them "
        "to override.",
        "monitoring.md",
    ),
    "pipeline_source": (
        "Pipeline",
        "What `churnops pipeline run` and the Dagster definitions read.",
        "concepts.md",
    ),
    "batch_chunk_rows": ("Batch scoring", "`churnops score` and its runs.", "batch.md"),
    "batch_test_pause_at": (
        "Testing hooks",
        "For the crash-safety tests; leave them alone in production.",
        None,
    ),
}


def setting_groups() -> list[SettingGroup]:
    """Return every setting once, in declaration order, in its documented group."""
    groups: list[SettingGroup] = []
    for name in Settings.model_fields:
        if name in _GROUP_STARTS or not groups:
            title, note, page = _GROUP_STARTS.get(name, ("Other", "", None))
            groups.append(SettingGroup(title, note, page, ()))
        last = groups[-1]
        groups[-1] = SettingGroup(last.title, last.note, last.page, (*last.names, name))
    return groups


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
