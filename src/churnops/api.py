"""The Python API: every stage as one call on a DataFrame, for notebooks and scripts.

Each function is a thin layer over the stage the CLI runs (the CLI, Dagster, the REST API
and the dashboard are layers over the same functions), so a notebook gets the same
contract, the same model and the same scores as production. Heavy libraries load inside
the calls, never at import: ``import churnops`` stays cheap.

Every function takes an optional :class:`~churnops.config.Settings`; ``None`` means
:func:`~churnops.config.get_settings` (``churnops.yaml`` plus ``CHURNOPS_*`` variables).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import Settings, get_settings
from churnops.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from churnops.data.contract import DataContract
    from churnops.data.validation import ValidationReport
    from churnops.monitoring import MonitoringResult
    from churnops.scoring import Predictor


def infer_contract(
    df: pd.DataFrame, target: str, id: str | None = None, positive: str | None = None
) -> DataContract:
    """Infer a table's data contract: column roles, kinds, categories, ranges, policies.

    The contract is what training, validation, the API and batch scoring all judge rows
    by; inspect it (``contract.columns``), tighten it by hand if needed, and pass it to
    :func:`validate` and :func:`train` so they use exactly that one.

    Args:
        df: an example table holding the churn label (usually the training data).
        target: the churn label column.
        id: the customer id column, if the table has one; it must be unique.
        positive: the label meaning "churned"; guessed from yes/true/1/churned when omitted.

    Returns:
        The inferred contract.

    Raises:
        ContractError: the target or id column is missing, or the table is too small.
    """
    from churnops.data.contract import infer_contract as infer

    return infer(df, target, id, positive)


def validate(
    df: pd.DataFrame, contract: DataContract, *, scoring: bool = False
) -> ValidationReport:
    """Check a table against a contract and report every problem by column and row.

    The table stays yours: nothing is cleaned in place. The report says ``ok`` (no errors;
    warnings are fine), lists ``errors`` and ``warnings``, and ``summary()`` is a short
    text for a person.

    Args:
        df: the table to check.
        contract: the contract to check it against (see :func:`infer_contract`).
        scoring: the table is to be scored, not trained on: no label column is required.

    Returns:
        The validation report.
    """
    from churnops.data.validation import validate as check

    return check(df, contract, require_target=not scoring).report


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` registered: the version, its family, metrics and threshold.

    A summary for people and notebooks; the model itself is in the registry, loaded with
    :func:`load_model`.

    Attributes:
        model_name: the registered model's name (``settings.model_name``).
        version: the new registered version.
        aliases: the version's aliases (``challenger``; the first version is ``champion``).
        family: the model family that won the tuning (``logistic``, ``lightgbm``, ...).
        metrics: holdout metrics (an honest estimate: the holdout took no part in training).
        cv: cross-validated metrics of the chosen configuration.
        threshold: the decision threshold (probability at or above it: churn).
        run_id: the MLflow run holding the training's parameters, metrics and plots.
        warnings: validation warnings about the training data (nothing blocking).
    """

    model_name: str
    version: str
    aliases: tuple[str, ...]
    family: str
    metrics: dict[str, float]
    cv: dict[str, float]
    threshold: float
    run_id: str
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> TrainResult:
        """Build the result from the summary ``train_and_register`` returns."""
        return cls(
            model_name=summary["model_name"],
            version=summary["model_version"],
            aliases=tuple(summary["aliases"]),
            family=summary["family"],
            metrics=dict(summary["holdout"]),
            cv=dict(summary["cv"]),
            threshold=float(summary["threshold"]),
            run_id=summary["run_id"],
            warnings=tuple(summary["warnings"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready data (lists, not tuples)."""
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["warnings"] = list(self.warnings)
        return data


def train(
    df: pd.DataFrame,
    target: str | None = None,
    id: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    settings: Settings | None = None,
    *,
    contract: DataContract | None = None,
    positive: str | None = None,
) -> TrainResult:
    """Train, tune, calibrate and register a churn model on a table.

    The same stage as ``churnops train``: every family is tuned with cross-validation, the
    best is calibrated and thresholded on out-of-fold predictions, scored on a holdout,
    logged to MLflow and registered as a new version (alias ``challenger``; the first
    version also becomes ``champion``).

    Args:
        df: the customer table with the churn label.
        target: the churn label column; taken from ``contract`` when one is given.
        id: the customer id column; taken from ``contract`` when one is given.
        families: model families to try (default ``settings.families``).
        trials: Optuna trials per family (default ``settings.trials``).
        settings: where the registry lives and the training knobs (default: get_settings()).
        contract: a contract to train under (e.g. one inferred and then edited);
            inferred from ``df`` when omitted.
        positive: the label meaning "churned", when it cannot be guessed.

    Returns:
        The registered version's summary.

    Raises:
        ConfigError: neither ``target`` nor ``contract`` was given.
        DataValidationError: the table breaks the contract (the message lists the rows).
    """
    from churnops.stages import train_and_register

    if contract is not None:
        target = target or contract.target
        id = id or contract.id
    if target is None:
        raise ConfigError("train() needs the churn label column: pass target=... or contract=...")
    summary = train_and_register(
        df,
        settings or get_settings(),
        target=target,
        id_column=id,
        contract=contract,
        positive=positive,
        families=families,
        trials=trials,
        source="churnops.train (DataFrame)",
    )
    return TrainResult.from_summary(summary)


class Model:
    """A registered model version, ready to score and explain tables.

    Scores go through the one scoring path the API and batch jobs use (the contract's
    column rules, the encoder, the native estimator, the calibrator), so a row gets here
    exactly the probability ``churnops serve`` and ``churnops score`` give it.

    Attributes:
        name: the registered model's name.
        version: the registered version number (text, as MLflow keeps it).
        family: the model family.
        threshold: the decision threshold: a probability at or above it is ``churn``.
        contract: the data contract rows are judged by.
        metrics: the version's holdout metrics.
        aliases: the version's aliases when it was loaded.
    """

    def __init__(self, predictor: Predictor) -> None:
        """Wrap a loaded :class:`~churnops.scoring.Predictor` (see :func:`load_model`)."""
        self._predictor = predictor
        self.name = predictor.name
        self.version = predictor.version
        self.family = predictor.family
        self.threshold = predictor.threshold
        self.contract = predictor.model.contract
        self.metrics = dict(predictor.holdout)
        self.aliases = list(predictor.aliases)

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, version={self.version!r}, family={self.family!r}, "
            f"threshold={self.threshold:.4f})"
        )

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score every row: its churn probability and whether it is above the threshold.

        Args:
            df: customers with the contract's feature columns (and its id column, when the
                contract has one); extra columns and the label column are ignored.

        Returns:
            One row per input row, on the input's index: the id column (when the contract
            has one), ``probability`` and ``churn`` (probability >= :attr:`threshold`).

        Raises:
            DataValidationError: rows break the contract (missing columns, unknown
                categories, numbers out of range, ...); the message names the columns,
                the values sent and the rows (counted from 1), and nothing is scored.
        """
        import pandas as pd

        p = self._predictor.scorer.many(self._encode(df))
        out = pd.DataFrame({"probability": p, "churn": p >= self.threshold}, index=df.index)
        if self.contract.id:
            out.insert(0, self.contract.id, df[self.contract.id].to_numpy())
        return out

    def explain(self, df: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """Return each row's ``top`` strongest reasons, as the API's ``?explain=true`` does.

        A reason is a feature, the customer's value of it as scored, and its signed
        log-odds contribution (positive pushes towards churn), exact SHAP for every family.

        Args:
            df: customers, as for :meth:`predict`.
            top: reasons per row, strongest first.

        Returns:
            ``top`` rows per input row, on the input's index repeated: the id column (when
            the contract has one), ``rank`` (1 = strongest), ``feature``, ``value`` and
            ``contribution``.

        Raises:
            DataValidationError: rows break the contract, as for :meth:`predict`.
        """
        import pandas as pd

        reasons = self._predictor.reasons(self._encode(df), top=top)
        rows = [
            (label, rank, reason)
            for label, row in zip(df.index, reasons, strict=True)
            for rank, reason in enumerate(row, start=1)
        ]
        out = pd.DataFrame(
            {
                "rank": [rank for _, rank, _ in rows],
                "feature": [r["feature"] for _, _, r in rows],
                "value": [r["value"] for _, _, r in rows],
                "contribution": [r["contribution"] for _, _, r in rows],
            },
            index=pd.Index([label for label, _, _ in rows], name=df.index.name),
        )
        if self.contract.id:
            ids = df[self.contract.id].to_numpy().repeat([len(r) for r in reasons])
            out.insert(0, self.contract.id, ids)
        return out

    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        """Judge ``df`` by the contract's rules (as a batch run does) and encode it.

        A batch run sets refused rows aside; here every row was asked for, so any refused
        row fails the call with validation's report of it.
        """
        from churnops.data.validation import validate as check

        model = self._predictor.model
        frame = df.drop(columns=[self.contract.target], errors="ignore")
        checked = check(
            frame, self.contract, require_target=False, rules=model.encoder.rules, clean=False
        )
        report = checked.report
        if not report.ok:
            raise DataValidationError(
                f"Cannot score with {self.name} v{self.version}: the table breaks its "
                f"contract.\n{report.summary()}",
                {"issues": [issue.model_dump() for issue in report.errors]},
            )
        return model.encoder.matrix(checked.judged)


def load_model(alias_or_version: str | int = "champion", settings: Settings | None = None) -> Model:
    """Load a registered model version, verified against its recorded file hashes.

    Args:
        alias_or_version: an alias (``champion``, ``challenger``) or a version number.
        settings: where the registry lives (default: get_settings()).

    Returns:
        The model, ready to :meth:`~Model.predict` and :meth:`~Model.explain`.

    Raises:
        ModelNotFoundError: no such alias or version is registered.
        ModelIntegrityError: the artifact's files differ from what was registered.
    """
    from churnops.scoring import Predictor

    ref = str(alias_or_version)
    alias, version = (None, ref) if ref.isdigit() else (ref, None)
    return Model(Predictor.from_registry(settings or get_settings(), alias=alias, version=version))


def score(
    source: str | Path, date: dt.date | str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Score every customer of a file with the champion into the store, for one date.

    The same stage as ``churnops score``: rows that break the contract are set aside in
    ``rejected_rows`` and the run goes on (unless more than ``max_rejected_share`` of
    them do); re-running a date replaces that date's scores. The source stays a file so
    the dashboard can show a customer's row later.

    Args:
        source: a CSV or Parquet file of customers.
        date: the date the scores are for (a date or ``YYYY-MM-DD``); today (UTC) if None.
        settings: where the registry and the store are (default: get_settings()).

    Returns:
        The run's record: ``id``, ``status``, ``rows_scored``, ``rows_rejected``,
        ``high_risk``, ``model_version``, ``seconds``, ...
    """
    from churnops.batch import score as score_source

    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            raise ConfigError(f"date must be YYYY-MM-DD, got {date!r}.") from None
    return score_source(settings or get_settings(), source, scoring_date=date)


def monitor(
    current: pd.DataFrame | str | Path,
    reference: pd.DataFrame | str | Path | None = None,
    labels: pd.DataFrame | str | Path | None = None,
    settings: Settings | None = None,
    *,
    report: str | Path | None = None,
) -> MonitoringResult:
    """Check a batch for drift and decay against the champion; decide whether to retrain.

    The same stage as ``churnops monitor``: data and prediction drift against the
    champion's training data (or ``reference``), label-free performance estimates,
    realised performance when labels are known, and the retrain triggers. The result is
    also written to the operational store, for the dashboard.

    Args:
        current: the batch to check: a DataFrame, or a CSV or Parquet file.
        reference: what to compare with (default: the champion's training snapshot).
        labels: late labels (id and target columns) joined to ``current`` by id; when
            omitted and ``current`` holds the label column, that is used.
        settings: thresholds and where the registry and store are (default: get_settings()).
        report: also write the HTML report here (and log it to MLflow).

    Returns:
        The result: ``verdict`` (ok, drift or retrain), ``decision.reasons``, the drift
        per feature and the metrics; ``to_dict()`` is what ``churnops monitor --json``
        prints.
    """
    from churnops.monitoring import monitor as run_monitor

    current_frame, current_name = _table(current, "current")
    reference_frame, reference_name = (
        _table(reference, "reference") if reference is not None else (None, None)
    )
    return run_monitor(
        current_frame,
        settings or get_settings(),
        reference=reference_frame,
        labels=_table(labels, "labels")[0] if labels is not None else None,
        report=Path(report) if report is not None else None,
        current_name=current_name,
        reference_name=reference_name,
    )


def evaluate(
    table: pd.DataFrame | str | Path | None = None,
    version: str | int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Return a registered version's metrics on labelled data (``churnops evaluate``).

    Args:
        table: labelled customers, as a frame or a file (default: the holdout logged
            with the version's training run, where the numbers equal its registered ones).
        version: the version number (default: the champion).
        settings: where the registry lives (default: get_settings()).

    Returns:
        ``roc_auc``, ``pr_auc``, ``f1``, ``precision``, ``recall`` at the model's
        ``threshold``, the ``version`` and the ``rows`` evaluated.
    """
    from churnops.stages import evaluate_version

    frame = _table(table, "table")[0] if table is not None else None
    return evaluate_version(
        settings or get_settings(), str(version) if version is not None else None, frame
    )


def _table(table: pd.DataFrame | str | Path, name: str) -> tuple[pd.DataFrame, str]:
    """Return a table given as a frame or a file, and the name reports show for it."""
    if isinstance(table, str | Path):
        from churnops.data.sources import read_table

        return read_table(table), str(table)
    return table, name
