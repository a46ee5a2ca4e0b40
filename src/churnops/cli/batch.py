"""``churnops score``, ``churnops report high-risk`` and ``churnops db upgrade``."""

from __future__ import annotations

import typer

from churnops.cli.output import JsonOption, console, handle_errors, out, print_json, progress_bars

report_app = typer.Typer(help="Reports from the operational store.", no_args_is_help=True)
db_app = typer.Typer(help="The operational store (SQLite or PostgreSQL).", no_args_is_help=True)


def _date(value: str | None, option: str = "--date"):
    from datetime import date

    from churnops.errors import ConfigError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be YYYY-MM-DD, got {value!r}.") from None


@handle_errors
def score_command(
    source: str | None = typer.Argument(
        None,
        help="CSV or Parquet file, or s3://bucket/key (or use --db/--table).",
        show_default=False,
    ),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL to read the table from."),
    table: str | None = typer.Option(None, "--table", help="Table to read when --db is given."),
    scoring_date: str | None = typer.Option(
        None, "--date", help="Date the scores are for (YYYY-MM-DD); default today (UTC)."
    ),
    engine: str = typer.Option("pandas", "--engine", help="pandas (chunked) or spark."),
    spark_master: str | None = typer.Option(
        None, "--spark-master", help="Spark master URL (default local[*])."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Score every customer with the champion into churn_scores for a date (replaces it)."""
    from churnops.config import get_settings

    if engine == "spark":  # before the scoring path loads: a missing extra fails fast
        from churnops.extras import require

        require("pyspark", "spark")
    from churnops.batch import score

    day = _date(scoring_date)
    settings = get_settings()
    with progress_bars(enabled=not as_json) as progress:
        run = score(
            settings,
            source,
            db=db,
            table=table,
            scoring_date=day,
            engine=engine,  # type: ignore[arg-type]
            spark_master=spark_master,
            progress=progress,
        )
    if as_json:
        print_json(run)
        return
    out.print(
        f"Run {run['id']} {run['status']}: {run['rows_scored']:,} customers scored for "
        f"{run['scoring_date']} ({run['high_risk']:,} high risk), {run['rows_rejected']:,} "
        f"rejected, model {run['model_name']} v{run['model_version']}, {run['engine']} engine, "
        f"{run['seconds']:.1f}s."
    )
    if run["rows_rejected"]:
        console.print(
            "Rejected rows and their reasons are in the rejected_rows table "
            "(row_number is the position in the source, 0-based: row 1 is 0)."
        )


@report_app.command("high-risk")
@handle_errors
def high_risk_command(
    scoring_date: str | None = typer.Option(
        None, "--date", help="Scoring date (YYYY-MM-DD); default the latest scored date."
    ),
    top: int = typer.Option(50, "--top", min=1, help="How many customers."),
    fmt: str = typer.Option("table", "--format", help="table, csv, json or html."),
    as_json: bool = JsonOption,
) -> None:
    """List the high-risk customers to call: rank, score and top reasons."""
    from churnops.batch import high_risk
    from churnops.batch.report import to_csv
    from churnops.config import get_settings
    from churnops.errors import ConfigError

    if fmt not in ("table", "csv", "json", "html"):
        raise ConfigError(f"--format must be table, csv, json or html, got {fmt!r}.")
    report = high_risk(get_settings(), _date(scoring_date), top)
    if as_json or fmt == "json":
        print_json(report)
    elif fmt == "csv":
        out.file.write(to_csv(report))
    elif fmt == "html":
        from churnops.charts.reports import high_risk_page

        out.file.write(high_risk_page(report))
    else:
        print_high_risk(report)


def print_high_risk(report: dict) -> None:
    """Print a high-risk report as a rich table."""
    from rich.table import Table

    from churnops.batch.report import reason_text, score_text

    view = Table(
        title=f"High-risk customers on {report['scoring_date']} "
        f"({report['high_risk_total']:,} above the threshold)"
    )
    for col in ("rank", "customer", "score", "top reasons"):
        view.add_column(col)
    for row in report["customers"]:
        view.add_row(
            str(row["risk_rank"]),
            str(row["customer_id"]),
            score_text(row["score"]),
            reason_text(row["reasons"]),
        )
    out.print(view)


@db_app.command("upgrade")
@handle_errors
def db_upgrade(as_json: bool = JsonOption) -> None:
    """Apply every store migration (also done automatically on first use)."""
    from churnops.config import get_settings
    from churnops.store import upgrade

    settings = get_settings()
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        settings.ensure_home()
    head = upgrade(url)
    import sqlalchemy as sa

    shown = sa.make_url(url).render_as_string(hide_password=True)
    if as_json:
        print_json({"database": shown, "revision": head})
    else:
        out.print(f"Store {shown} is at revision {head}.")
