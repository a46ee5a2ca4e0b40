"""The sweep closes dead runs — by process on this host, by heartbeat anywhere."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from churnops.batch.runs import Heartbeat, sweep
from churnops.config import Settings
from churnops.store import get_engine
from churnops.store.tables import ScoringRun


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_closes_dead_runs_by_pid_or_stale_heartbeat(tmp_path: Path, store_url: str) -> None:
    """Dead here (pid gone) or silent too long anywhere: abandoned; live or unknown: kept."""
    store = get_engine(Settings(home=tmp_path, database_url=store_url))
    now = datetime.now(UTC)
    here, there = socket.gethostname(), "pod-7f9c"
    rows = {
        "dead here": (here, _dead_pid(), now),
        "silent elsewhere": (there, 1, now - timedelta(hours=2)),
        "beating elsewhere": (there, 1, now - timedelta(minutes=1)),
        "no heartbeat (older store)": (there, 1, None),
    }
    ids = {}
    runs = ScoringRun.__table__
    with store.begin() as conn:
        for name, (host, pid, beat) in rows.items():
            ids[name] = conn.execute(
                runs.insert().values(
                    started_at=now - timedelta(hours=3),
                    status="running",
                    scoring_date=date(2026, 1, 1),
                    source=name,
                    engine="pandas",
                    model_name="m",
                    model_version="1",
                    pid=pid,
                    host=host,
                    heartbeat_at=beat,
                )
            ).inserted_primary_key[0]

    assert sweep(store, stale_after=timedelta(minutes=30))["abandoned"] == 2

    with store.connect() as conn:
        found = dict(conn.execute(sa.select(runs.c.id, runs.c.status)).all())
        errors = dict(conn.execute(sa.select(runs.c.id, runs.c.error)).all())
    assert found[ids["dead here"]] == "abandoned"
    assert found[ids["silent elsewhere"]] == "abandoned"
    assert "No heartbeat" in errors[ids["silent elsewhere"]]
    assert "pod-7f9c" in errors[ids["silent elsewhere"]]
    assert found[ids["beating elsewhere"]] == "running"
    assert found[ids["no heartbeat (older store)"]] == "running"
    assert sweep(store)["abandoned"] == 0  # closed runs are not closed twice
    store.dispose()


def test_heartbeat_refreshes_a_running_run_until_it_stops(tmp_path: Path, sqlite_url: str) -> None:
    """The background beat moves heartbeat_at forward, and leaves finished runs alone."""
    store = get_engine(Settings(home=tmp_path, database_url=sqlite_url))
    runs = ScoringRun.__table__
    old = datetime(2026, 1, 1, tzinfo=UTC)
    with store.begin() as conn:
        run_id = conn.execute(
            runs.insert().values(
                started_at=old,
                status="running",
                scoring_date=date(2026, 1, 1),
                source="s",
                engine="pandas",
                model_name="m",
                model_version="1",
                heartbeat_at=old,
            )
        ).inserted_primary_key[0]
    beat = sa.select(runs.c.heartbeat_at).where(runs.c.id == run_id)
    with Heartbeat(store, run_id, every=0.05):
        for _ in range(500):  # bounded (5 s); a beat lands within ~50 ms
            with store.connect() as conn:
                if conn.execute(beat).scalar() != old.replace(tzinfo=None):
                    break
            time.sleep(0.01)
    with store.connect() as conn:
        first = conn.execute(beat).scalar()
    assert first > old.replace(tzinfo=None)
    with store.begin() as conn:
        conn.execute(runs.update().where(runs.c.id == run_id).values(status="succeeded"))
    with Heartbeat(store, run_id, every=0.01):
        time.sleep(0.2)  # ~20 beats would have landed
    with store.connect() as conn:
        assert conn.execute(beat).scalar() == first  # a finished run is not beaten
    store.dispose()
