"""``churnops monitor`` and ``churnops pipeline run``."""

from __future__ import annotations

from typing import Any

import typer

from churnops.cli.output import JsonOption, handle_errors, out, print_json, progress_bars

pipeline_app = typer.Typer(
    help="The closed loop: source -> validate -> retrain? -> promote -> score -> monitor.",
    no_args_is_help=True,
)


@handle_errors
def monitor_command(
    current: str = typer.Argument(
        ..., help="The batch to check: CSV or Parquet file, or s3://bucket/key."
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Compare with this table (default: champion's training data)."
    ),
    labels: str | None = typer.Option(
        None, "--labels", help="Late labels: id + target columns, joined to CURRENT by id."
    ),
    report: str | None = typer.Option(
        None,
        "--report",
        help="Write the HTML report to this file or s3://bucket/key (and log it to MLflow); "
        "default: in reports_location when that is set.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check a batch for drift and decay against the champion; decide whether to retrain."""
    from churnops.config import get_settings
    from churnops.progress import step

    settings = get_settings()
    if report is None and settings.reports_location:
        from datetime import UTC, datetime

        from churnops.monitoring.report import report_location

        report = str(report_location(settings, f"monitor-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"))
    with progress_bars() as progress:
        with step(progress, "monitor: read tables"):
            from churnops.data.sources import read_table
            from churnops.monitoring import monitor

            frames = [read_table(p) if p else None for p in (current, reference, labels)]
        result = monitor(
            frames[0],
            settings,
            reference=frames[1],
            labels=frames[2],
            report=report,
            current_name=current,
            reference_name=reference,
            progress=progress,
        )
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    print_monitoring(summary)


def print_monitoring(summary: dict[str, Any]) -> None:
    """Print a monitoring summary for a person."""
    colour = {"ok": "green", "drift": "yellow", "retrain": "red"}[summary["verdict"]]
    model = summary["model"]
    out.print(
        f"[bold {colour}]{summary['verdict'].upper()}[/] — {model['name']} v{model['version']}, "
        f"{summary['current']['rows']:,} rows vs {summary['reference']['rows']:,} reference rows."
    )
    drifted = summary["drifted_features"]
    out.print(
        f"Drifted features: {len(drifted)} ({summary['drift_share']:.0%})"
        + (f": {', '.join(drifted)}" if drifted else "")
    )
    out.print(
        f"Score PSI {summary['prediction_psi']:.3f}; high-risk share "
        f"{summary['high_risk_share']:.1%}."
    )
    est, band = summary["estimated"], summary["estimated_band"]
    out.print(
        "Estimated (label-free, 99% band): "
        + ", ".join(
            f"{label} {_fmt(est[key])} {_band(band.get(key))}"
            for key, label in (
                ("f1", "F1"),
                ("precision", "precision"),
                ("recall", "recall"),
                ("roc_auc", "ROC-AUC"),
            )
        )
        + "."
    )
    out.print(f"[dim]{summary['estimate_assumption']}[/]")
    if summary["realised"]:
        real = summary["realised"]
        out.print(
            f"Realised ({summary['current']['labelled_rows']:,} labels): F1 {_fmt(real['f1'])}, "
            f"precision {_fmt(real['precision'])}, recall {_fmt(real['recall'])}, "
            f"ROC-AUC {_fmt(real['roc_auc'])}."
        )
    check = summary["estimate_check"]
    if check and check["disagrees"]:
        out.print(f"[bold red]{check['message']}[/]")
    elif check:
        out.print(f"Estimate check: {check['message']}.")
    derived = summary["derived"]
    if derived:
        floor = derived["f1_floor"]
        out.print(
            f"Watching key features {', '.join(derived['key_features']) or 'none'} "
            f"({derived['key_features_from']}); F1 floor "
            f"{'none' if floor is None else f'{floor:.3f}'} ({derived['f1_floor_from']}); "
            f"{len(derived['segment_columns'])} segment column(s); time column "
            f"{derived['date_column'] or 'none'} ({derived['date_from']})."
        )
    for warning in summary["warnings"]:
        if not (check and warning == check["message"]):
            out.print(f"[yellow]Warning:[/] {warning}")
    if summary["retrain"]:
        out.print("[bold]Retrain[/], because:")
        for reason in summary["reasons"]:
            out.print(f"  - {reason}")
    else:
        out.print("No retrain trigger fired.")
    if summary["report"]:
        out.print(f"Report: {summary['report']} (MLflow run {summary['mlflow_run_id']}).")


@pipeline_app.command("run")
@handle_errors
def pipeline_run(
    source: str | None = typer.Option(
        None,
        "--source",
        help="Customer table, a file or s3://bucket/key (default: CHURNOPS_PIPELINE_SOURCE).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run the loop once: digest -> validate -> trigger -> train -> promote -> score -> monitor."""
    from churnops.config import get_settings
    from churnops.orchestration.pipeline import run_pipeline

    with progress_bars() as progress:
        summary = run_pipeline(get_settings(), source=source, progress=progress)
    if as_json:
        print_json(summary)
        return
    for step in summary["steps"]:
        out.print(f"{step['step']:<10} {step['status']:<8} {step['summary']}")
    out.print(f"Pipeline run {summary['pipeline_run']} took {summary['seconds']:.1f}s.")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _band(bounds: list[float] | None) -> str:
    return "" if not bounds else f"[{bounds[0]:.3f}–{bounds[1]:.3f}]"
