"""The audit writer process shares the server's stderr, so it writes JSON lines only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from churnops.store.audit_writer import frame


def _writer_stderr(url: str, retry_seconds: float = 120.0) -> list[str]:
    """Run the writer on one audit row until it exits; return its stderr lines."""
    header = {"url": url, "flush_seconds": 0.05, "busy_seconds": 1.0}
    row = (time.time(), "r1", "k", "/v1/predict", 200, 1.0, ["C1"], 1, "d" * 64, "1", "c", [0.5])
    done = subprocess.run(
        [sys.executable, "-m", "churnops.store.audit_writer"],
        input=frame({**header, "retry_seconds": retry_seconds}) + frame(([row], [])),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stderr.decode().splitlines()


def test_migrating_a_new_store_prints_no_alembic_text(tmp_path: Path) -> None:
    """A new store is migrated by the writer without Alembic's plain-text INFO lines."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    lines = _writer_stderr(url)
    assert [json.loads(line) for line in lines] == []  # nothing to say, and no plain text
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # migrated, and the row written
        assert conn.execute(sa.text("select request_id from audit_log")).scalars().all() == ["r1"]
    engine.dispose()


def test_store_errors_are_logged_as_json(tmp_path: Path) -> None:
    """A store that cannot be opened is reported in JSON lines, with the writer's logger."""
    lines = _writer_stderr(f"sqlite:///{tmp_path}", retry_seconds=0.3)  # a folder, not a file
    records = [json.loads(line) for line in lines]
    assert records
    assert {r["logger"] for r in records} == {"churnops.audit_writer"}
    assert {frozenset(r) for r in records} == {frozenset({"time", "level", "logger", "message"})}
    assert {r["level"] for r in records} == {"error"}
    assert "dropping 1 rows" in records[-1]["message"]


def test_the_writer_logs_like_the_server_without_importing_it() -> None:
    """The server's formatter, from a module that leaves FastAPI and the scoring path out."""
    from churnops.serving.logs import JsonFormatter
    from churnops.store import audit_writer

    assert audit_writer.JsonFormatter is JsonFormatter
    code = (
        "import sys, churnops.store.audit_writer\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'"
        " or m.startswith('churnops.serving')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
