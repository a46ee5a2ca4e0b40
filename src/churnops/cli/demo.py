"""``churnops demo``: the end-to-end demo that ``make run`` runs."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from churnops.cli import batch, models
from churnops.cli.output import (
    JsonOption,
    handle_errors,
    out,
    print_command,
    print_json,
    progress_bars,
)


@handle_errors
def demo_command(
    trials: int | None = typer.Option(None, "--trials", help="Optuna trials per family."),
    data_out: Path = typer.Option(Path("data/telco.csv"), "--data-out", help="Demo CSV path."),
    serve: bool | None = typer.Option(
        None, "--serve/--no-serve", help="End by serving the API [default: on a terminal]."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run the demo: Telco data -> train -> promote -> score -> six monitored weeks -> serve."""
    from churnops.config import get_settings
    from churnops.demo import run_demo

    settings = get_settings()
    with progress_bars() as progress:
        result = run_demo(settings, data_out=data_out, trials=trials, progress=progress)
    if as_json:
        print_json(result)
    else:
        print_demo(result)
    if serve if serve is not None else sys.stdin.isatty():  # tests and pipes never block
        from churnops.serving.demo import serve_demo

        serve_demo(settings, say=print_command)


def print_demo(result: dict[str, Any]) -> None:
    """Print the demo's story in the order it happened."""
    models.print_training(result["training"])
    promotion = result["promotion"]
    out.print(f"Promotion: {promotion['decision']} ({promotion['reason']}).")
    out.print(f"\n[bold]Batch scoring[/] of the demo customers with v{result['champion_version']}:")
    batch.print_high_risk(result["high_risk"])
    out.print("\n[bold]Six simulated weeks in production[/] (labels arrive a week late):")
    for week in result["production"]["weeks"]:
        realised = week["realised_f1"] if week["realised_f1"] is not None else "n/a (no labels yet)"
        out.print(
            f"Week {week['week']}: drift {week['drift']:.2f}, drifted "
            f"{', '.join(week['drifted_features']) or 'none'}; F1 estimated "
            f"{week['estimated_f1']} / realised {realised}; "
            + (f"retrain: {'; '.join(week['reasons'])}" if week["retrain"] else "no trigger")
            + (f" -> {week['action']}" if week["action"] else "")
        )
    out.print(
        f"\nChampion now: v{result['production']['final_champion']}. "
        f"Demo took {result['seconds']:.0f}s."
    )
    print_next_steps(result["tracking_uri"])


def print_next_steps(tracking_uri: str) -> None:
    """Print the commands that open what the demo made, each on a line of its own."""
    print_command("MLflow UI (then open http://127.0.0.1:5000):")
    print_command(f"  mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}")
    print_command(
        "API: http://127.0.0.1:8000 (churnops serve); retention dashboard: "
        "http://127.0.0.1:8501 (churnops dashboard), signed in with a key from:"
    )
    print_command("  churnops keys create --name NAME --role analyst")
