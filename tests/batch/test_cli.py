"""`churnops score` and `churnops report high-risk` from the command line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.batch.report import reason_text
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
    as_html = cli_env.invoke(app, ["report", "high-risk", "--top", "5", "--format", "html"])
    page = as_html.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert "High-risk customers, 2026-03-01" in page
    # the dashboard's charts (score distribution, reason counts) on one plotly.js copy
    assert page.count('class="plotly-graph-div"') == 2
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)) == 1
    assert not re.search(r"<script[^>]+src=", page)  # opens offline
    table = page[page.index("<table>") :]
    assert table.count("<tr>") == 1 + 5  # header + the five riskiest
    assert "<td>1</td>" in table
    first = report["customers"][0]
    assert f"<td class='text'>{html.escape(first['customer_id'])}</td>" in table
    assert html.escape(reason_text(first["reasons"])) in table


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
