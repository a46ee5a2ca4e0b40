"""`churnops score` and `churnops report high-risk` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, trained_home: Path, sqlite_url: str) -> CliRunner:
    """A CLI runner on the trained registry and a fresh SQLite store."""
    monkeypatch.setenv("CHURNOPS_HOME", str(trained_home))
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", sqlite_url)
    return CliRunner()


def test_score_json_prints_the_run_row_and_report_formats_work(
    cli_env: CliRunner, customers_file: Path
) -> None:
    """`score --json` prints the scoring_runs row; the report renders json, csv and html."""
    result = cli_env.invoke(app, ["score", str(customers_file), "--date", "2026-03-01", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert run["rows_scored"] == 350
    assert run["scoring_date"] == "2026-03-01"
    assert run["engine"] == "pandas"

    as_json = cli_env.invoke(app, ["report", "high-risk", "--top", "3", "--json"])
    report = json.loads(as_json.stdout)
    assert [c["risk_rank"] for c in report["customers"]] == [1, 2, 3]
    as_csv = cli_env.invoke(app, ["report", "high-risk", "--top", "3", "--format", "csv"])
    lines = as_csv.stdout.strip().splitlines()
    assert lines[0].startswith("risk_rank,customer_id,score,reasons")
    assert len(lines) == 4
    as_html = cli_env.invoke(app, ["report", "high-risk", "--format", "html"])
    assert as_html.stdout.startswith("<!doctype html>")
    assert "<td>1</td>" in as_html.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "missing.parquet", "--json"], "Data file not found"),
        (["score", "x.parquet", "--date", "01/03/2026", "--json"], "--date must be YYYY-MM-DD"),
        (["score", "x.parquet", "--engine", "dask", "--json"], "Unknown engine"),
        (["report", "high-risk", "--json"], "No scores yet"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    cli_env: CliRunner, tmp_path: Path, customers_file: Path, args: list[str], message: str
) -> None:
    """It names the problem in one JSON error object instead of a traceback."""
    args = [str(customers_file) if a == "x.parquet" else a for a in args]
    result = cli_env.invoke(app, args)
    assert result.exit_code != 0
    assert message in json.loads(result.stdout)["message"]
