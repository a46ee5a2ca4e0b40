"""``churnops train``, ``models`` (and ``models gate``), ``promote``, ``rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from churnops.cli.data import DataArg, DbOption, TableOption, read_source
from churnops.cli.output import JsonOption, handle_errors, out, print_json, progress_bars

if TYPE_CHECKING:
    from rich.table import Table

    from churnops.registry.models import RegisteredVersion


@handle_errors
def train_command(
    data: str | None = DataArg,
    target: str = typer.Option(..., "--target", help="The churn label column."),
    id_column: str | None = typer.Option(None, "--id", help="The customer id column."),
    positive: str | None = typer.Option(None, "--positive", help="Label meaning churn."),
    contract_file: Path | None = typer.Option(None, "--contract", help="Validate against this."),
    trials: int | None = typer.Option(None, "--trials", help="Optuna trials per family."),
    families: list[str] | None = typer.Option(
        None,
        "--families",
        help="Families to try (repeat or comma-separate): logistic, spline, lightgbm, "
        "xgboost, catboost.",
    ),
    metric: str | None = typer.Option(
        None, "--metric", help="Selection metric: roc_auc, pr_auc, f1."
    ),
    threshold: str | None = typer.Option(
        None, "--threshold", help="Threshold strategy: f1 or profit."
    ),
    metrics_out: Path = typer.Option(
        Path("metrics.json"), "--metrics-out", help="Holdout metrics file."
    ),
    db: str | None = DbOption,
    table: str | None = TableOption,
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (pandas, one machine) or spark (tables that do not fit one machine; "
        "DATA may be a Parquet folder or s3:// URL, --table without --db a Spark table).",
    ),
    master: str | None = typer.Option(
        None,
        "--master",
        help="Spark master for --engine spark (local[N], spark://...); default: the "
        "spark_master setting.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train and tune every family, track the run in MLflow, and register the best model."""
    from churnops.config import get_settings
    from churnops.data.contract import DataContract
    from churnops.errors import ConfigError
    from churnops.progress import step
    from churnops.stages import train_and_register

    if engine not in ("local", "spark"):
        raise ConfigError(f"Unknown engine {engine!r}: choose local or spark.")

    updates: dict[str, Any] = {}
    if metric:
        updates["metric"] = metric
    if threshold:
        updates["threshold_strategy"] = threshold
    settings = _with(get_settings(), updates)
    names = [n.strip() for item in families or [] for n in item.split(",") if n.strip()] or None
    contract = DataContract.load(contract_file) if contract_file else None
    if engine == "spark" and db:
        raise ConfigError(
            "--engine spark reads files, s3:// URLs or Spark tables (--table without --db); "
            "train SQL tables with --engine local or export them to Parquet first."
        )
    with progress_bars(enabled=True) as progress:
        if engine == "spark":
            frame: Any = data  # Spark reads DATA (or --table) itself, on its workers
        else:
            with step(progress, "read data"):
                frame = read_source(data, db, table)
                # The training stage's imports (numba kernels, scikit-learn) take seconds:
                # load them while this step's clock runs rather than before the next step.
                import churnops.training.run  # noqa: F401
        summary = train_and_register(
            frame,
            settings,
            target=target,
            id_column=id_column,
            contract=contract,
            positive=positive,
            families=names,
            trials=trials,
            # Spark's source label (the path or the Spark table) is derived by the stage
            source=str(data or f"{db}#{table}") if engine == "local" else "",
            metrics_out=metrics_out,
            progress=progress,
            engine=engine,
            table=table,
            master=master,
        )
    if as_json:
        print_json(summary)
        return
    print_training(summary)


def print_training(summary: dict[str, Any]) -> None:
    """Print a training summary: family, version, threshold and CV vs holdout metrics."""
    from rich.table import Table

    out.print(
        f"[bold]{summary['family']}[/] registered as {summary['model_name']} "
        f"v{summary['model_version']} ({', '.join(summary['aliases'])}), threshold "
        f"{summary['threshold']:.3f}, calibration {summary['calibration']}, "
        f"{summary['seconds']:.1f}s."
    )
    view = Table("metric", "cv", "holdout")
    for key, value in summary["holdout"].items():
        view.add_row(key, f"{summary['cv'][key]:.4f}", f"{value:.4f}")
    out.print(view)
    out.print(
        "Best CV per family: " + ", ".join(f"{k} {v:.4f}" for k, v in summary["family_cv"].items())
    )


models_app = typer.Typer(
    help="List registered model versions with aliases, family and holdout metrics.",
    invoke_without_command=True,
)


@models_app.callback()
def models_group(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List registered model versions with aliases, family and holdout metrics.

    A group rather than a command so ``churnops models gate`` sits beside the listing;
    ``churnops models`` alone still lists.
    """
    if ctx.invoked_subcommand is None:
        models_command(as_json=as_json)


@handle_errors
def models_command(as_json: bool = False) -> None:
    """List registered model versions with aliases, family and holdout metrics."""
    from dataclasses import asdict

    from churnops import registry
    from churnops.config import get_settings

    versions = registry.list_versions(get_settings())
    if as_json:
        print_json(
            {"model_name": get_settings().model_name, "versions": [asdict(v) for v in versions]}
        )
        return
    if not versions:
        out.print("No registered versions yet: run `churnops train`.")
        return
    out.print(versions_table(versions, get_settings().model_name, out.width))


METRICS = ("roc_auc", "pr_auc", "f1")
KEY_COLUMNS = ("version", "aliases", "family", *METRICS)
LAYOUTS = (
    (*KEY_COLUMNS, "threshold", "created"),
    (*KEY_COLUMNS, "threshold", "date"),
    (*KEY_COLUMNS, "date"),
    KEY_COLUMNS,
)
"""The versions table's columns, widest layout first: at a narrow terminal the created time,
then the threshold, then the created date give way; key values are never cut."""


def versions_table(versions: list[RegisteredVersion], title: str, width: int) -> Table:
    """Return a rich table of ``versions`` in the widest layout that fits ``width``."""
    from datetime import datetime

    from rich import box
    from rich.table import Table

    def created(v: RegisteredVersion) -> datetime:
        return datetime.fromisoformat(v.created).astimezone()

    cells = {
        "version": lambda v: v.version,
        "aliases": lambda v: "\n".join(v.aliases),  # one per line: never split mid-name
        "family": lambda v: v.family or "",
        **{m: lambda v, m=m: f"{v.holdout[m]:.4f}" if m in v.holdout else "" for m in METRICS},
        "threshold": lambda v: f"{v.threshold:.3f}" if v.threshold is not None else "",
        "created": lambda v: created(v).strftime("%Y-%m-%d %H:%M"),
        "date": lambda v: created(v).strftime("%Y-%m-%d"),
    }
    unbounded = out.options.update(max_width=10_000)  # measure the table's natural width
    for layout in LAYOUTS:
        view = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in layout:
            numeric = column in (*METRICS, "threshold", "version")
            # Folded, not cut, if even the narrowest layout does not fit.
            view.add_column(
                "created" if column == "date" else column,
                justify="right" if numeric else "left",
                overflow="fold",
            )
        for v in versions:
            view.add_row(*(cells[column](v) for column in layout))
        if out.measure(view, options=unbounded).maximum <= width:
            break
    return view


@models_app.command("gate")
@handle_errors
def gate_command(
    min_roc_auc: float | None = typer.Option(
        None, "--min-roc-auc", min=0.0, max=1.0, help="Floor of the holdout ROC AUC."
    ),
    min_pr_auc: float | None = typer.Option(
        None, "--min-pr-auc", min=0.0, max=1.0, help="Floor of the holdout PR AUC."
    ),
    min_f1: float | None = typer.Option(
        None, "--min-f1", min=0.0, max=1.0, help="Floor of the holdout F1."
    ),
    contract_file: Path | None = typer.Option(
        None, "--contract", help="The reviewed contract the model must match."
    ),
    alias: str = typer.Option("champion", "--alias", help="The version to check."),
    as_json: bool = JsonOption,
) -> None:
    """Exit 1 unless the champion's holdout metrics meet the floors and its contract matches.

    The release workflow's gate: a release ships the champion only when this passes.
    """
    from churnops import registry
    from churnops.config import get_settings
    from churnops.data.contract import DataContract
    from churnops.errors import ConfigError

    floors = {
        metric: floor
        for metric, floor in (("roc_auc", min_roc_auc), ("pr_auc", min_pr_auc), ("f1", min_f1))
        if floor is not None
    }
    if not floors and contract_file is None:
        raise ConfigError("Nothing to check: give a floor (--min-roc-auc ...) or --contract.")
    contract = DataContract.load(contract_file) if contract_file else None
    result = registry.release_gate(get_settings(), floors, contract, alias=alias)
    if as_json:
        print_json(result.to_dict())
    else:
        checks = [f"{m} >= {f:.4f}" for m, f in floors.items()]
        checks += [f"contract {contract_file}"] if contract_file else []
        label = f"{result.model_name} v{result.version} ({alias})"
        if result.passed:
            out.print(f"[green]passed[/]: {label}: {', '.join(checks)}.")
        else:
            out.print(f"[red]failed[/]: {label}:")
            for failure in result.failures:
                out.print(f"  - {escape(failure)}")
    if not result.passed:
        raise typer.Exit(1)


@handle_errors
def promote_command(
    min_delta: float | None = typer.Option(
        None, "--min-delta", help="Required gain (default 0.005)."
    ),
    metric: str | None = typer.Option(None, "--metric", help="roc_auc, pr_auc or f1."),
    as_json: bool = JsonOption,
) -> None:
    """Promote the challenger to champion if it wins on the same data by min-delta."""
    from churnops import registry
    from churnops.config import get_settings

    result = registry.promote(get_settings(), metric=metric, min_delta=min_delta)
    if as_json:
        print_json(result.to_dict())
    else:
        colour = "green" if result.decision == "promoted" else "yellow"
        out.print(f"[{colour}]{result.decision}[/]: {result.reason}")


@handle_errors
def rollback_command(
    to: str | None = typer.Option(None, "--to", help="Version to make champion."),
    as_json: bool = JsonOption,
) -> None:
    """Move champion back to the previous champion (or to --to VERSION)."""
    from churnops import registry
    from churnops.config import get_settings

    result = registry.rollback(get_settings(), to_version=to)
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(f"Champion is now v{result.to_version} (was v{result.from_version}).")


def _with(settings: Any, updates: dict[str, Any]) -> Any:
    if not updates:
        return settings
    from pydantic import ValidationError

    from churnops.config import Settings
    from churnops.errors import ConfigError

    try:
        return Settings.model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:
        raise ConfigError(f"Invalid option: {exc.errors()[0]['msg']}") from None
