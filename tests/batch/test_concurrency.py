"""A batch swap in progress blocks no other writer of the store; two runs of a date never race.

A real ``churnops score`` process pauses inside its swap transaction (on SQLite it holds
the write lock there) for longer than SQLite's old 5 s busy timeout, while this process
scores the same date, scores another date, creates an API key and writes audit rows.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.batch import list_runs, score
from churnops.cli import app
from churnops.config import get_settings
from churnops.errors import RunInProgressError
from churnops.serving.audit import AuditWriter
from tests.batch.conftest import batch_settings, read_scores, start_scoring, wait_for

pytestmark = pytest.mark.integration
DAY, OTHER_DAY = date(2026, 3, 1), date(2026, 3, 2)
PAUSE = 8.0  # > the old 5 s busy timeout, with room for the writers to queue behind it
AUDIT_ROWS = 21


def _audit_rows(writer: AuditWriter, done: threading.Event) -> None:
    """Queue one audit row every 0.1 s from the start of the pause, then drain the writer."""

    async def scenario() -> None:
        await writer.start()
        for i in range(AUDIT_ROWS):
            at = time.time()
            writer.audit(
                (at, f"r{i}", "k", "/v1/predict", 200, 1.0, ["C"], 1, None, "1", "c", [0.5])
            )
            await asyncio.sleep(0.1)
        await writer.stop(timeout=2 * PAUSE)

    asyncio.run(scenario())
    done.set()


def test_a_paused_swap_blocks_no_other_writer(
    trained_home: Path,
    store_url: str,
    customers_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same date: refused at once, recorded; other date, key, audit rows: wait and land."""
    settings = batch_settings(trained_home, store_url)
    before = score(settings, customers_file, scoring_date=DAY)  # the date's current run
    swapping = start_scoring(trained_home, store_url, customers_file, DAY, "swap", PAUSE)
    outcomes: dict[str, Any] = {}

    def run(name: str, day: date) -> None:
        try:
            outcomes[name] = score(settings, customers_file, scoring_date=day)
        except Exception as exc:
            outcomes[name] = exc

    try:
        wait_for(swapping, "swap")
        paused_at = time.monotonic()
        writer = AuditWriter(settings, flush_seconds=0.05)
        audited = threading.Event()
        threads = [
            threading.Thread(target=run, args=("same", DAY)),
            threading.Thread(target=run, args=("other", OTHER_DAY)),
            threading.Thread(target=_audit_rows, args=(writer, audited)),
        ]
        for thread in threads:
            thread.start()
        monkeypatch.setenv("CHURNOPS_HOME", str(trained_home))
        monkeypatch.setenv("CHURNOPS_DATABASE_URL", store_url)
        get_settings.cache_clear()
        key = CliRunner().invoke(app, ["keys", "create", "--name", "ops", "--json"])
        for thread in threads:
            thread.join(4 * PAUSE)
        out, _ = swapping.communicate(timeout=60)
    finally:
        swapping.kill()
    assert swapping.returncode == 0
    swapped = json.loads(out)

    # (a) the same date: a clear refusal naming the run in progress, recorded as a run
    refused = outcomes["same"]
    assert isinstance(refused, RunInProgressError), refused
    who = f"(run {swapped['id']}, pid {swapping.pid} on {socket.gethostname()})"
    assert f"Another run of {DAY} is in progress {who}" in refused.message
    assert refused.exit_code == 4
    recorded = {r["id"]: r for r in list_runs(settings)}[refused.details["run_id"]]
    assert (recorded["status"], recorded["scoring_date"]) == ("failed", DAY.isoformat())
    assert recorded["error"] == refused.message
    # ... and the paused run completed and owns the date, untouched by the refused one
    assert swapped["status"] == "succeeded"
    assert set(read_scores(store_url, DAY.isoformat())["run_id"]) == {swapped["id"]}
    assert swapped["id"] != before["id"]

    # (b) another date waited for the write lock and succeeded
    other = outcomes["other"]
    assert isinstance(other, dict), other
    assert other["status"] == "succeeded"
    assert len(read_scores(store_url, OTHER_DAY.isoformat())) == 350

    # (c) `churnops keys create` waited too
    assert key.exit_code == 0, key.output
    assert json.loads(key.stdout)["name"] == "ops"

    # (d) every audit row written during the pause landed, none dropped
    assert audited.is_set()
    assert (writer.written["audit"], writer.dropped) == (AUDIT_ROWS, 0)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from audit_log")).scalar() == AUDIT_ROWS
    engine.dispose()
    assert time.monotonic() - paused_at < 4 * PAUSE
