"""A scoring run killed midway (a real process, SIGKILL) leaves the date as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops.batch import list_runs, score
from tests.batch.conftest import batch_settings, postgres_schema_url, read_scores

pytestmark = pytest.mark.integration
DAY = date(2026, 3, 1)
MARKER = "churnops-batch-pause: "


def _start_scoring(home: Path, url: str, source: Path, point: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(home),
        "CHURNOPS_DATABASE_URL": url,
        "CHURNOPS_BATCH_CHUNK_ROWS": "100",
        "CHURNOPS_BATCH_TEST_PAUSE_AT": point,
        "CHURNOPS_BATCH_TEST_PAUSE": "60",
    }
    code = "from churnops.cli import main; main()"
    argv = [sys.executable, "-c", code, "score", str(source), "--date", DAY.isoformat(), "--json"]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(proc: subprocess.Popen[str], point: str, timeout: float = 120) -> None:
    """Read the child's stderr until it announces ``point`` (then it sleeps there)."""
    seen: list[str] = []

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith(MARKER + point):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not any(line.startswith(MARKER + point) for line in seen):
        proc.kill()
        pytest.fail(f"scoring never reached {point!r}; stderr:\n{''.join(seen)[-2000:]}")


def _kill_midway(trained_home: Path, url: str, source: Path, point: str) -> None:
    settings = batch_settings(trained_home, url)
    before = score(settings, source, scoring_date=DAY)
    proc = _start_scoring(trained_home, url, source, point)
    try:
        _wait_for(proc, point)
        # While the child sits inside its swap transaction, a reader still sees the old run.
        during = read_scores(url, DAY.isoformat())
        assert len(during) == 350
        assert set(during["run_id"]) == {before["id"]}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    after = read_scores(url, DAY.isoformat())
    assert len(after) == 350
    assert set(after["run_id"]) == {before["id"]}
    runs = list_runs(settings)
    assert runs[0]["status"] == "running"  # the killed run: recorded, never finished
    assert runs[1]["status"] == "succeeded"
    killed = runs[0]["id"]
    again = score(settings, source, scoring_date=DAY)  # and the next run just works
    assert set(read_scores(url, DAY.isoformat())["run_id"]) == {again["id"]}
    # It also closed the killed run (its process is gone) and kept only the live run's rows.
    statuses = {r["id"]: r["status"] for r in list_runs(settings)}
    assert statuses[killed] == "abandoned"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT run_id, count(*) FROM run_scores GROUP BY run_id"))
        assert dict(stored.all()) == {again["id"]: 350}
    engine.dispose()


@pytest.mark.parametrize("point", ["chunk 2", "swap"])
def test_sqlite_run_killed_midway_leaves_the_date_intact(
    trained_home: Path, sqlite_url: str, customers_file: Path, point: str
) -> None:
    """Killed while scoring or inside the swap, SQLite keeps the previous complete run."""
    _kill_midway(trained_home, sqlite_url, customers_file, point)


def test_postgres_run_killed_inside_the_swap_leaves_the_date_intact(
    trained_home: Path, customers_file: Path
) -> None:
    """Killed after copying the run but before commit, PostgreSQL keeps the previous run."""
    for url in postgres_schema_url():
        _kill_midway(trained_home, url, customers_file, "swap")
