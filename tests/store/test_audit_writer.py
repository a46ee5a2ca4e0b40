"""The audit writer process shares the server's stderr, so it writes JSON lines only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from churnops.store.audit_writer import AUDIT_FIELDS, frame, timestamp_param


def _audit_row() -> tuple:
    """One audit row, as the server hands it to the writer."""
    return (time.time(), "r1", "k", "/v1/predict", 200, 1.0, ["C1"], 1, "d" * 64, "1", "c", [0.5])


def _audit_rows(n: int, start: float) -> list[tuple]:
    """``n`` audit rows a microsecond apart from ``start``, with request ids r0, r1, ..."""
    return [(start + i * 1e-6, f"r{i}", *_audit_row()[2:]) for i in range(n)]


def _writer_stderr(url: str, retry_seconds: float = 120.0) -> list[str]:
    """Run the writer on one audit row until it exits; return its stderr lines."""
    header = {"url": url, "flush_seconds": 0.05, "busy_seconds": 1.0}
    done = subprocess.run(
        [sys.executable, "-m", "churnops.store.audit_writer"],
        input=frame({**header, "retry_seconds": retry_seconds}) + frame(([_audit_row()], [])),
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


@pytest.mark.parametrize(
    "timestamp",
    [0.0, -0.5, -1.0000005, 1764489600.0000005, 1764489600.9999995, 1764489600.5, 2.5e11],
)
def test_sqlite_times_are_sqlalchemys_text_to_the_microsecond(timestamp: float) -> None:
    column = sa.DateTime(timezone=True)
    dialect = sqlite.dialect()
    expected = column._cached_bind_processor(dialect)(datetime.fromtimestamp(timestamp, UTC))
    assert timestamp_param(column, dialect)(timestamp) == expected


def test_sqlite_times_agree_over_many_consecutive_rows() -> None:
    column = sa.DateTime(timezone=True)
    dialect = sqlite.dialect()
    process, fast = column._cached_bind_processor(dialect), timestamp_param(column, dialect)
    rng = np.random.default_rng(7)
    stamps = np.concatenate(
        [1764489600 + np.arange(20_000) * 1e-7, np.sort(rng.uniform(-1e9, 4e9, 20_000))]
    )
    assert [fast(t) for t in stamps.tolist()] == [
        process(datetime.fromtimestamp(t, UTC)) for t in stamps.tolist()
    ]


def test_other_stores_get_the_columns_own_parameter() -> None:
    column = sa.DateTime(timezone=True)
    param = timestamp_param(column, postgresql.dialect())
    assert param(1764489600.25) == datetime(2025, 11, 30, 8, 0, 0, 250000, tzinfo=UTC)


def test_written_audit_rows_read_back_as_an_orm_insert_stores_them(tmp_path: Path) -> None:
    from churnops.store.audit_writer import StoreWriter
    from churnops.store.tables import AuditLog

    writer = StoreWriter(f"sqlite:///{tmp_path / 'store.db'}")
    row = (
        1764489600.9999995,
        "r1",
        "k",
        "/v1/predict",
        200,
        1.0,
        ["C1"],
        1,
        "d" * 64,
        "1",
        "c",
        [0.5],
    )
    writer.write([row], [])
    with writer.engine.begin() as conn:
        conn.execute(
            AuditLog.__table__.insert(),
            [
                dict(
                    zip(
                        AUDIT_FIELDS,
                        [
                            datetime.fromtimestamp(row[0], UTC),
                            "r2",
                            *row[2:6],
                            '["C1"]',
                            1,
                            "d" * 64,
                            "1",
                            "c",
                            "[0.5]",
                        ],
                        strict=True,
                    )
                )
            ],
        )
        stored = conn.execute(sa.text("SELECT request_id, at FROM audit_log")).all()
        read = conn.execute(sa.select(AuditLog.__table__.c.at)).scalars().all()
    assert stored[0][1] == stored[1][1] == "2025-11-30 08:00:01.000000"
    assert read[0] == read[1]


def test_written_prediction_rows_are_stored_as_an_orm_insert_stores_them(tmp_path: Path) -> None:
    from churnops.store.audit_writer import PREDICTION_FIELDS, StoreWriter
    from churnops.store.tables import PredictionLog

    writer = StoreWriter(f"sqlite:///{tmp_path / 'store.db'}")
    features = {"customer_id": "C1", "tenure": 3, "partner": True, "charges": None, "x": "é"}
    at = 1764489600.1234565
    written = (at, "r1", "churn-model", "3", "champion", "C1", features, 0.25, False)
    as_text = (
        at,
        "r2",
        "churn-model",
        "3",
        "champion",
        "C1",
        orjson.dumps(features).decode(),
        0.25,
        False,
    )
    writer.write([], [written, as_text])
    with writer.engine.begin() as conn:
        orm = dict(zip(PREDICTION_FIELDS, written, strict=True))
        orm.update(
            at=datetime.fromtimestamp(at, UTC),
            request_id="r3",
            features=orjson.dumps(features).decode(),
        )
        conn.execute(PredictionLog.__table__.insert(), [orm])
        columns = ", ".join(
            f"{name}, typeof({name})" for name in PREDICTION_FIELDS if name != "request_id"
        )
        stored = conn.execute(
            sa.text(f"SELECT {columns} FROM prediction_log ORDER BY request_id")
        ).all()
    assert stored[0] == stored[1] == stored[2]
    assert orjson.loads(stored[0][10]) == features


def _run_writer(url: str, rows: list[tuple], monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """Run the writer's loop in this process on a pipe; return its gc.freeze calls, reports."""
    from churnops.store import audit_writer

    freezes: list[int] = []
    monkeypatch.setattr(audit_writer.gc, "freeze", lambda: freezes.append(1))
    read, write = os.pipe()
    header = {"url": url, "flush_seconds": 0.0, "retry_seconds": 0.0}
    os.write(write, frame(header) + frame((rows, [])))
    os.close(write)
    reports: list[str] = []
    try:
        audit_writer.run(read, reports.append)
    finally:
        os.close(read)
    return freezes, reports


def test_the_writer_freezes_its_heap_after_its_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    freezes, reports = _run_writer(url, [_audit_row()], monkeypatch)
    assert freezes == [1]
    assert reports == ["W 1 0\n"]


def test_a_writer_that_could_not_write_does_not_freeze(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # the store's folder would have to be inside a file
    freezes, reports = _run_writer(f"sqlite:///{blocker / 'store.db'}", [_audit_row()], monkeypatch)
    assert freezes == []
    assert reports == ["D 1\n"]


def test_the_pacer_rests_after_each_turn_of_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn's worth of this thread's CPU, then one short rest; no rest before that."""
    from churnops.store import audit_writer

    rests: list[float] = []
    monkeypatch.setattr(audit_writer.time, "sleep", rests.append)
    pace = audit_writer.Pacer(turn_seconds=0.002, rest_seconds=20e-6)
    pace()
    assert rests == []  # no CPU spent yet
    start = time.thread_time()
    while time.thread_time() - start < 0.003:  # burn a turn and a half
        pass
    pace()
    pace()  # the turn started again at the rest
    assert rests == [20e-6]


def test_the_writer_paces_once_per_statement_and_stores_every_row(tmp_path: Path) -> None:
    """200 rows are three statements (80, 80, 40): three chances to rest, all rows stored."""
    from churnops.store.audit_writer import ROWS_PER_INSERT, StoreWriter

    calls: list[int] = []
    writer = StoreWriter(f"sqlite:///{tmp_path / 'store.db'}", pace=lambda: calls.append(1))
    writer.write(_audit_rows(200, 1764489600.0), [])
    assert len(calls) == -(-200 // ROWS_PER_INSERT) == 3
    with writer.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT request_id FROM audit_log ORDER BY id")).scalars()
        assert list(stored) == [f"r{i}" for i in range(200)]
    writer.engine.dispose()


@pytest.mark.parametrize(("age", "rests"), [(0.0, 3), (60.0, 0)])
def test_the_writer_process_rests_between_statements_while_it_keeps_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: float, rests: int
) -> None:
    """Through a Pacer (here resting after every statement) while its rows are fresh;
    rows older than BEHIND_SECONDS mean it is behind, so it writes them without rests."""
    import functools

    from churnops.store import audit_writer

    slept: list[float] = []
    monkeypatch.setattr(audit_writer.time, "sleep", slept.append)
    monkeypatch.setattr(audit_writer, "Pacer", functools.partial(audit_writer.Pacer, 0.0))
    rows = _audit_rows(200, time.time() - age)
    _, reports = _run_writer(f"sqlite:///{tmp_path / 'store.db'}", rows, monkeypatch)
    assert reports == ["W 200 0\n"]
    assert slept == [audit_writer.REST_SECONDS] * rests


def test_a_row_without_a_time_leaves_the_pacer_as_it_was() -> None:
    from churnops.store.audit_writer import BEHIND_SECONDS, Pacer

    pace = Pacer()
    pace.keep_up([(time.time() - 2 * BEHIND_SECONDS, "r1")], [])
    assert not pace.resting
    pace.keep_up([("not a time", "r1")], [()])
    assert not pace.resting
    pace.keep_up([], [(time.time(), "r2")])
    assert pace.resting
