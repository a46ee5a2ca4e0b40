"""``churnops evaluate``: a registered version's metrics on labelled data, as a metrics file.

Training already reports holdout metrics, but only for the model it just fitted. This
command answers the same question later and for any version — the champion, ``--version
N``, or the version a ``churnops train --json`` summary names (``--trained``) — on the
holdout logged with that version's run or on a labelled table given. DVC's evaluate stage
runs it after training (``--trained train.json``): the champion alias only moves on
promotion, so the version to evaluate must come from what the train stage registered.

The numbers come from the training code's own metrics on the model's own scoring path
(encoder + estimator + calibrator + threshold), so on the holdout they equal the metrics
registered with the version.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from churnops.cli.data import DbOption, TableOption, read_source
from churnops.cli.output import JsonOption, handle_errors, out, print_json


@handle_errors
def evaluate_command(
    data: str | None = typer.Argument(
        None,
        help="A labelled CSV or Parquet table (default: the version's own holdout).",
        show_default=False,
    ),
    version: str | None = typer.Option(None, "--version", help="Version to evaluate."),
    trained: Path | None = typer.Option(
        None, "--trained", help="Evaluate the version a `churnops train --json` output names."
    ),
    metrics_out: Path = typer.Option(Path("metrics.json"), "--out", help="Metrics file to write."),
    db: str | None = DbOption,
    table: str | None = TableOption,
    as_json: bool = JsonOption,
) -> None:
    """Evaluate a registered model (default the champion) and write its metrics file."""
    from churnops.config import get_settings
    from churnops.errors import ConfigError
    from churnops.stages import EVALUATED, evaluate_version

    if version is not None and trained is not None:
        raise ConfigError("Give --version or --trained, not both.")
    if trained is not None:
        version = trained_version(trained)
    frame = read_source(data, db, table) if (data or db or table) else None
    metrics = evaluate_version(get_settings(), version, frame)
    metrics_out.parent.mkdir(parents=True, exist_ok=True)
    metrics_out.write_text(json.dumps(metrics, indent=2) + "\n")
    on = str(data or f"{db}#{table}") if frame is not None else "its holdout"
    if as_json:
        print_json({"path": str(metrics_out), "data": on, **metrics})
        return
    scores = ", ".join(f"{name} {metrics[name]:.4f}" for name in EVALUATED)
    out.print(
        f"v{metrics['version']} on {on} ({metrics['rows']:,} rows, threshold "
        f"{metrics['threshold']:.3f}): {scores}. Wrote {metrics_out}.",
        markup=False,
        highlight=False,
    )


def trained_version(summary: Path) -> str:
    """Return the version a saved ``churnops train --json`` output registered."""
    from churnops.errors import ConfigError

    try:
        found = json.loads(summary.read_text()).get("model_version")
    except FileNotFoundError:
        raise ConfigError(f"--trained: {summary} does not exist.") from None
    except (ValueError, AttributeError):
        found = None
    if found is None:
        raise ConfigError(
            f"--trained: {summary} is not what `churnops train --json` prints (no model_version)."
        )
    return str(found)
