"""The ``churnops`` command line: one thin command per stage, ``--json`` on every command.

Heavy libraries are imported inside commands so ``churnops --help`` stays fast.
"""

from __future__ import annotations

import typer

from churnops.cli import batch, dashboard, data, demo, models, monitor, serve
from churnops.cli.output import handle_errors

app = typer.Typer(
    name="churnops",
    help="Churn prediction from a customer table to production and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.command("demo")(demo.demo_command)
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
app.command("dashboard")(dashboard.dashboard_command)
app.add_typer(batch.report_app, name="report")
app.add_typer(batch.db_app, name="db")


def main() -> None:
    """Entry point of the ``churnops`` console script."""
    app()
