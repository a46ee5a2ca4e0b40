"""A scoring run killed midway (a real process, SIGKILL) leaves the date as it was."""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops.batch import list_runs, score
from tests.batch.conftest import (
    batch_settings,
    postgres_schema_url,
    read_scores,
    start_scoring,
    wait_for,
)

pytestmark = pytest.mark.integration
DAY = date(2026, 3, 1)


def _kill_midway(trained_home: Path, url: str, source: Path, point: str) -> None:
    settings = batch_settings(trained_home, url)
    before = score(settings, source, scoring_date=DAY)
    proc = start_scoring(trained_home, url, source, DAY, point)
    try:
        wait_for(proc, point)
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
