"""The ``churnops`` command line: one thin command per stage, ``--json`` on every command.

Heavy libraries are imported inside commands so ``churnops --help`` stays fast.
"""

from __future__ import annotations

import typer

from churnops.cli import batch, dashboard, data, demo, evaluate, init, models, monitor, serve
from churnops.cli.output import handle_errors

app = typer.Typer(
    name="churnops",
    help="Churn prediction from a customer table to production and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    """Print ``churnops X.Y.Z`` and stop: eager, so no command is needed after it."""
    if value:
        from churnops import __version__

        typer.echo(f"churnops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Take the program's own options (the help shown is the app's)."""


app.command("init")(init.init_command)
app.add_typer(data.app, name="data")
app.command("demo")(demo.demo_command)
app.command("validate")(handle_errors(data.validate_command))
app.command("train")(models.train_command)
app.command("evaluate")(evaluate.evaluate_command)
app.add_typer(models.models_app, name="models")
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
