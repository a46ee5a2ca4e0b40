"""The ``churnops`` command line: one thin command per stage, ``--json`` on every command.

Heavy libraries are imported inside commands so ``churnops --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from churnops.cli import batch, data, models, monitor, serve
from churnops.cli.output import JsonOption, handle_errors, out, print_json, progress_bars

app = typer.Typer(
    name="churnops",
    help="Churn prediction from a customer table to production and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.command("validate")(handle_errors(data.validate_command))
app.command("train")(models.train_command)
app.command("models")(models.models_command)
app.command("promote")(models.promote_command)
app.command("rollback")(models.rollback_command)
app.command("serve")(serve.serve_command)
app.add_typer(serve.keys_app, name="keys")
app.command("monitor")(monitor.monitor_command)
app.add_typer(monitor.pipeline_app, name="pipeline")
app.command("score")(batch.score_command)
app.add_typer(batch.report_app, name="report")
app.add_typer(batch.db_app, name="db")


@app.command("demo")
@handle_errors
def demo(
    trials: int | None = typer.Option(None, "--trials", help="Optuna trials per family."),
    data_out: Path = typer.Option(Path("data/telco.csv"), "--data-out", help="Demo CSV path."),
    serve: bool | None = typer.Option(
        None, "--serve/--no-serve", help="End by serving the API [default: on a terminal]."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run the demo: Telco data -> validate -> train -> promote -> summary."""
    from churnops.config import get_settings
    from churnops.demo import run_demo

    settings = get_settings()
    with progress_bars() as progress:
        result = run_demo(settings, data_out=data_out, trials=trials, progress=progress)
    if as_json:
        print_json(result)
        return
    models.print_training(result["training"])
    promotion = result["promotion"]
    out.print(f"Promotion: {promotion['decision']} ({promotion['reason']}).")
    for week in result["production"]["weeks"]:
        out.print(
            f"Week {week['week']}: drift {week['drift']:.2f}, drifted "
            f"{', '.join(week['drifted_features']) or 'none'}; F1 est {week['estimated_f1']} "
            f"/ realised {week['realised_f1']}; "
            + (f"retrain: {'; '.join(week['reasons'])}" if week["retrain"] else "no trigger")
            + (f" -> {week['action']}" if week["action"] else "")
        )
    out.print(
        f"After the simulated weeks the champion is v{result['production']['final_champion']}."
    )
    out.print(
        f"Champion: {settings.model_name} v{result['champion_version']}. "
        f"Demo took {result['seconds']:.0f}s."
    )
    batch.print_high_risk(result["high_risk"])
    out.print(
        f"MLflow UI: mlflow ui --backend-store-uri {result['tracking_uri']}  (then open http://127.0.0.1:5000)"
    )
    if serve if serve is not None else sys.stdin.isatty():  # tests and pipes never block
        from churnops.serving.demo import serve_demo

        serve_demo(settings, say=out.print)


def main() -> None:
    """Entry point of the ``churnops`` console script."""
    app()
