"""The command line: --json on every command, clear errors with exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import Settings
from churnops.errors import MissingExtraError
from churnops.extras import require
from tests.factories import make_customers

runner = CliRunner()


def run(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_help_is_fast() -> None:
    """`churnops --help` starts in well under 1.5 s (heavy libraries load lazily)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "churnops", "--help"], capture_output=True)
    assert done.returncode == 0
    assert b"train" in done.stdout
    # Generous bound for a noisy CI box; the README target (1.5 s) is checked in bench/.
    assert time.perf_counter() - started < 5


def test_version_and_shell_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    """`churnops --version` prints the installed version; Typer's completion is offered."""
    from importlib.metadata import version

    import typer.completion

    # Typer names the shell from the parent processes; a test under nohup/setsid has none.
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"churnops {version('churnops')}\n"
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="churnops")
    assert script.exit_code == 0, (script.output, script.exception)
    assert "complete -o default -F _churnops_completion churnops" in script.stdout


def test_data_demo_contract_and_validate(tmp_path: Path) -> None:
    """Demo data, contract inference and validation chain together through the CLI."""
    data = tmp_path / "telco.csv"
    assert run("data", "demo", "--out", str(data))["rows"] == 7043
    contract = run(
        "data",
        "contract",
        str(data),
        "--target",
        "churn",
        "--id",
        "customer_id",
        "--out",
        str(tmp_path / "c.json"),
    )
    assert contract["positive_label"] == "Yes"
    report = run("validate", str(data), "--contract", str(tmp_path / "c.json"))
    assert report["ok"] is True


def test_validate_fails_with_rows_and_exit_1(tmp_path: Path) -> None:
    """Bad rows make validate exit 1 and the JSON names the check and rows."""
    df = make_customers(100)
    df.loc[3, "contract"] = "Weekly"
    df.to_csv(tmp_path / "bad.csv", index=False)
    make_customers(100).to_csv(tmp_path / "good.csv", index=False)
    run(
        "data",
        "contract",
        str(tmp_path / "good.csv"),
        "--target",
        "churn",
        "--id",
        "customer_id",
        "--out",
        str(tmp_path / "c.json"),
    )
    report = run(
        "validate", str(tmp_path / "bad.csv"), "--contract", str(tmp_path / "c.json"), code=1
    )
    assert report["ok"] is False
    issue = report["issues"][0]
    assert issue["check"] == "unseen_category"
    assert (issue["rows"], issue["lines"]) == ([4], [5])  # row 4 of the table, line 5 of the file
    assert issue["message"].startswith("'contract': 1 row(s): unknown category (sent 'Weekly'; ")
    assert issue["message"].endswith("); row 4 (line 5)")


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    """A missing file and a bad family exit non-zero with a message and no traceback."""
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope.csv"), "--target", "churn"])
    assert missing.exit_code == 1
    assert "not found" in missing.output
    assert "Traceback" not in missing.output
    make_customers(100).to_csv(tmp_path / "c.csv", index=False)
    bad = run(
        "train", str(tmp_path / "c.csv"), "--target", "churn", "--families", "lightning", code=2
    )
    assert bad["error"] == "ConfigError"
    no_model = run("promote", code=3)
    assert no_model["error"] == "ModelNotFoundError"


@pytest.mark.integration
def test_train_models_promote_rollback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train --json has the documented keys; models/promote/rollback speak JSON too."""
    monkeypatch.chdir(tmp_path)
    make_customers(500, seed=13).to_csv("c.csv", index=False)
    args = (
        "train",
        "c.csv",
        "--target",
        "churn",
        "--id",
        "customer_id",
        "--trials",
        "1",
        "--families",
        "logistic,lightgbm",
    )
    first = run(*args)
    assert {
        "run_id",
        "model_name",
        "model_version",
        "family",
        "threshold",
        "seconds",
        "cv",
        "holdout",
    } <= set(first)
    assert {"roc_auc", "pr_auc", "f1", "brier"} <= set(first["holdout"])
    assert json.loads(Path("metrics.json").read_text()) == pytest.approx(first["holdout"], abs=1e-6)
    second = run(*args)
    assert second["model_version"] == "2"
    versions = run("models")["versions"]
    assert [v["version"] for v in versions] == ["2", "1"]
    decision = run("promote", "--min-delta", "-1")
    assert decision["decision"] == "promoted"
    assert {"champion_score", "challenger_score", "champion_version"} <= set(decision)
    assert run("rollback") == {
        "from_version": "2",
        "to_version": "1",
        "reason": "rollback from v2 to v1",
    }


@pytest.mark.integration
def test_demo_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`churnops demo` (what `make run` runs) trains, scores, monitors six weeks, no serving."""
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--trials", "1", "--no-serve")
    assert result["validation"]["ok"] is True
    assert result["training"]["holdout"]["roc_auc"] > 0.8
    assert result["high_risk"]["customers"][0]["risk_rank"] == 1
    assert len(result["high_risk"]["customers"]) == 10
    weeks = result["production"]["weeks"]
    assert len(weeks) == 6
    assert any(w["retrain"] for w in weeks)  # the drift is found and the trigger fires
    assert Path("data/telco.csv").exists()


def test_require_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing optional engine is a MissingExtraError (exit 1) naming the extra to install."""
    require("json", "none")  # installed: no error, nothing imported
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if churnops[spark] were left out
    with pytest.raises(MissingExtraError) as caught:
        require("pyspark", "spark")
    assert caught.value.exit_code == 1
    assert "pip install 'churnops[spark]'" in caught.value.message
    assert "uv sync --extra spark" in caught.value.message


def test_score_on_spark_without_pyspark_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`score --engine spark` without PySpark exits 1 with the extra, before any scoring."""
    monkeypatch.setitem(sys.modules, "pyspark", None)
    result = run("score", str(tmp_path / "any.parquet"), "--engine", "spark", code=1)
    assert result == {
        "error": "MissingExtraError",
        "message": result["message"],
        "module": "pyspark",
        "extra": "spark",
    }
    assert "churnops[spark]" in result["message"]


# Importing any of these costs seconds; a command that only reads the store needs none.
HEAVY = ("mlflow", "sklearn", "scipy", "numba", "lightgbm", "xgboost", "pandas", "alembic")


def _seed_scores(settings: Settings) -> None:
    """Write one finished scoring run of three customers, as `churnops score` leaves it."""
    from churnops.store import RunScore, ScoringDate, ScoringRun, session_scope

    now = datetime.now(UTC)
    with session_scope(settings) as session:
        run = ScoringRun(
            started_at=now,
            finished_at=now,
            status="succeeded",
            scoring_date=date(2026, 1, 5),
            source="seed",
            engine="pandas",
            model_name="churn-model",
            model_version="1",
            threshold=0.5,
            rows_in=3,
            rows_scored=3,
            high_risk=2,
        )
        session.add(run)
        session.flush()
        reasons = json.dumps([{"feature": "tenure", "contribution": 0.8}])
        session.add_all(
            [
                RunScore(
                    run_id=run.id, risk_rank=1, customer_id="C1", score=0.99991, reasons=reasons
                ),
                RunScore(
                    run_id=run.id, risk_rank=2, customer_id="C3", score=0.99987, reasons=reasons
                ),
                RunScore(run_id=run.id, risk_rank=3, customer_id="C2", score=0.2, reasons=None),
            ]
        )
        session.add(ScoringDate(scoring_date=run.scoring_date, run_id=run.id, swapped_at=now))


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_report_high_risk_imports_no_model_libraries(tmp_path: Path, fmt: str) -> None:
    """`report high-risk` reads the store: a fresh process never imports MLflow or sklearn.

    Structural, not timed: the modules loaded are read from ``sys.modules`` at exit of a
    real ``python -m churnops`` process.
    """
    home = tmp_path / "home"
    _seed_scores(Settings(home=home))
    loaded = tmp_path / "modules.txt"
    probe = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: open({str(loaded)!r}, 'w').write('\\n'.join(sys.modules)))\n"
        f"sys.argv = ['churnops', 'report', 'high-risk', '--format', {fmt!r}]\n"
        "runpy.run_module('churnops', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CHURNOPS_HOME": str(home), "COLUMNS": "200"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "C1" in done.stdout
    assert "C2" not in done.stdout  # below the run's threshold
    if fmt == "table":  # neighbouring top scores print apart, reasons with their log-odds
        assert "0.99991" in done.stdout
        assert "0.99987" in done.stdout
        assert "tenure (+0.80 log-odds)" in done.stdout
    modules = set(loaded.read_text().split())
    assert "churnops.batch.report" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


SECRET = "S3cretPW"
SECRET_URLS = [
    f"mysql+pymysql://svc:{SECRET}@host/x",  # no driver installed
    f"postgresql+psycopg://svc:{SECRET}@127.0.0.1:1/x",  # nothing listens on port 1
]


def _printed(result: Any) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize("url", SECRET_URLS)
@pytest.mark.parametrize(
    "command", [["validate"], ["train", "--target", "churn"], ["score"]], ids=str
)
def test_database_url_password_is_never_printed(url: str, command: list[str]) -> None:
    """A --db URL's password appears in no error, neither as text nor as JSON."""
    for as_json in ([], ["--json"]):
        result = runner.invoke(app, [*command, "--db", url, "--table", "t", *as_json])
        assert result.exit_code == 1, _printed(result)
        assert SECRET not in _printed(result)


@pytest.mark.parametrize(
    ("variable", "command"),
    [
        ("CHURNOPS_DATABASE_URL", ["db", "upgrade"]),
        ("MLFLOW_TRACKING_URI", ["models"]),
        ("MLFLOW_TRACKING_URI", ["rollback"]),
    ],
)
def test_store_url_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, variable: str, command: list[str]
) -> None:
    """Unreachable stores configured with a password: internal errors are redacted too."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://svc:{SECRET}@127.0.0.1:1/" if variable.startswith("MLFLOW") else SECRET_URLS[1]
    monkeypatch.setenv(variable, url)
    for as_json in ([], ["--json"]):
        result = runner.invoke(app, [*command, *as_json])
        assert result.exit_code != 0, _printed(result)
        assert SECRET not in _printed(result)


def test_commands_to_copy_print_whole_on_an_80_column_terminal(tmp_path: Path) -> None:
    """The demo's curl and `mlflow ui` lines are one line each, however narrow the terminal."""
    uri = f"sqlite:///{tmp_path / ('a-long-folder-name' * 3) / 'mlflow.db'}"
    probe = (
        "from churnops.cli.demo import print_next_steps\n"
        "from churnops.cli.output import print_command\n"
        "from churnops.serving.demo import curl_command\n"
        f"print_next_steps({uri!r})\n"
        "example = {'customer_id': 'C-1', 'contract': 'Month-to-month', 'tenure': 1}\n"
        "curl = curl_command('http://127.0.0.1:8000', 'chk_' + 'k' * 40, example)\n"
        "print_command(f'Try it:\\n  {curl}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "80", "TERM": "xterm"},
        check=True,
    )
    lines = done.stdout.splitlines()
    curl = next(x for x in lines if x.lstrip().startswith("curl "))
    assert curl.endswith('"tenure": 1}\'')
    assert len(curl) > 80
    assert f"  mlflow ui --backend-store-uri {uri}" in lines
    assert "  churnops keys create --name NAME --role analyst" in lines
