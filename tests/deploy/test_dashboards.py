"""The Grafana dashboards query what exists: SQL panels run against a store a real pipeline
filled, and every panel uses a data source that is provisioned.

"churnops model health" reads the churnops store (PostgreSQL in the compose stack)
through the provisioned ``churnops store`` data source: batch runs, rejected rows,
monitoring runs, registry events and pipeline steps, where the jobs already record them.
Its SQL is PostgreSQL's; each panel's query runs here against a store that two
``churnops pipeline run`` passes and a batch run with bad rows wrote, on PostgreSQL (the
real check; required in CI) and on SQLite where the SQL is portable. Grafana macros are
expanded the way Grafana expands them. The Prometheus panels are checked against a live
app by tests/serving/test_monitoring_config.py.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from churnops.config import Settings
from tests.batch.conftest import postgres_schema_url
from tests.conftest import home_tracking_uri

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
MODEL_HEALTH = DASHBOARDS / "churnops-model-health.json"
TIME_FILTER = re.compile(r"\$__timeFilter\(\s*([\w.]+)\s*\)")
BAD_ROWS = {"tenure": (-5, 3), "contract": ("Weekly", 2)}  # column: (value, how many rows)
N_BAD = sum(n for _, n in BAD_ROWS.values())

# The columns each panel shows (a renamed column breaks its overrides and the reader's eye).
EXPECTED = {
    "Batch runs succeeded": ["runs"],
    "Batch runs failed": ["runs"],
    "Hours since the last successful batch run": ["hours"],
    "Rows rejected": ["rows"],
    "Rows scored and rejected per batch run": ["time", "scored", "rejected"],
    "Batch run duration": ["time", "duration"],
    "Drift share and prediction PSI per monitoring run": [
        "time",
        "drift share",
        "prediction PSI",
        "high-risk share",
    ],
    "Estimated vs realised F1 per monitoring run": [
        "time",
        "estimated",
        "realised",
        "floor",
        "holdout baseline",
    ],
    "Retrain decisions": ["time", "model version", "decision", "reasons"],
    "Why rows were rejected": ["reason", "rows"],
    "Features in the latest monitoring run": [
        "feature",
        "test",
        "p-value",
        "PSI",
        "severity",
        "verdict",
    ],
    "Promotions and rollbacks": [
        "time",
        "action",
        "from",
        "to",
        "metric",
        "from score",
        "to score",
        "reason",
        "actor",
    ],
    "Batch runs": [
        "time",
        "status",
        "date",
        "model version",
        "rows in",
        "scored",
        "rejected",
        "high risk",
        "seconds",
        "error",
    ],
    "Pipeline steps that did work or failed": [
        "time",
        "pipeline run",
        "step",
        "status",
        "detail",
    ],
    "annotation: Promotions and rollbacks": ["time", "text"],
}
# Panels whose SQL has no SQLite spelling; Grafana reads PostgreSQL, which runs them all.
POSTGRES_ONLY = {
    "Hours since the last successful batch run": "EXTRACT(EPOCH FROM now() - ...) is PostgreSQL",
}


@dataclass(frozen=True)
class Store:
    """A store filled by real jobs, and the dialect its panels' macros expand for."""

    url: str
    dialect: str


@dataclass(frozen=True)
class Query:
    """One SQL query of the dashboard: a panel target or an annotation."""

    title: str
    sql: str
    format: str


def _queries() -> list[Query]:
    dashboard = json.loads(MODEL_HEALTH.read_text())
    queries = [
        Query(panel["title"], target["rawSql"], target.get("format", "time_series"))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    for note in dashboard.get("annotations", {}).get("list", []):
        if "target" in note:
            target = note["target"]
            queries.append(Query(f"annotation: {note['name']}", target["rawSql"], "table"))
    return queries


def expand_macros(sql: str, dialect: str, start: datetime, end: datetime) -> str:
    """Expand Grafana's ``$__timeFilter(column)`` as its PostgreSQL data source does
    (``column BETWEEN '<RFC 3339>' AND '<RFC 3339>'``); SQLite keeps datetimes as
    ``YYYY-MM-DD HH:MM:SS`` text, so its bounds are written that way to compare as text."""

    def bound(moment: datetime) -> str:
        if dialect == "postgresql":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    expanded = TIME_FILTER.sub(
        lambda m: f"{m.group(1)} BETWEEN '{bound(start)}' AND '{bound(end)}'", sql
    )
    assert "$" not in expanded, f"a Grafana macro or variable this test cannot expand: {sql}"
    return expanded


def _bad_source(good: Path, out: Path) -> Path:
    """Write ``good`` with a few rows the champion's contract rejects (batch run 3)."""
    frame = pd.read_csv(good)
    row = 0
    for column, (value, count) in BAD_ROWS.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row : row + count - 1, column] = value
        row += count
    frame.to_csv(out, index=False)
    return out


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store two pipeline runs (train, score, monitor; then new data: retrain, promote,
    score, monitor) and a batch run with rejected rows wrote."""
    from churnops.batch import score
    from churnops.data.synth import write_synthetic
    from churnops.orchestration import run_pipeline

    folder = tmp_path_factory.mktemp(f"dashboards-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(contextlib.contextmanager(postgres_schema_url)())
        else:
            url = f"sqlite:///{folder / 'store.db'}"
        home = folder / "home"
        settings = Settings(
            home=home,
            tracking_uri=home_tracking_uri(home),
            database_url=url,
            trials=1,
            cv_folds=2,
            families=["logistic"],
        )
        first, second = folder / "a.csv", folder / "b.csv"
        write_synthetic(first, 800, seed=3)
        write_synthetic(second, 800, seed=4, drift=0.6)
        run_pipeline(settings, source=first)
        run_pipeline(settings, source=second)
        bad = _bad_source(second, folder / "bad.csv")
        run = score(settings, bad, scoring_date=datetime.now(UTC).date() - timedelta(days=1))
        assert (run["status"], run["rows_rejected"]) == ("succeeded", N_BAD), run
        yield Store(url, request.param)


def _run(store: Store, query: Query) -> pd.DataFrame:
    now = datetime.now(UTC).replace(tzinfo=None)
    sql = expand_macros(query.sql, store.dialect, now - timedelta(days=30), now)
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(sql.replace(":", r"\:")), conn)
    finally:
        engine.dispose()


@pytest.mark.parametrize("query", _queries(), ids=lambda q: q.title)
def test_every_sql_query_runs_and_shows_its_columns(store: Store, query: Query) -> None:
    """Each panel's query runs on the filled store, returns rows, and has the columns the
    panel is laid out for; a time series has a ``time`` column and numbers beside it."""
    if store.dialect == "sqlite" and query.title in POSTGRES_ONLY:
        pytest.skip(f"PostgreSQL-only SQL: {POSTGRES_ONLY[query.title]}")
    frame = _run(store, query)
    assert query.title in EXPECTED, f"{query.title}: add its expected columns to EXPECTED"
    assert list(frame.columns) == EXPECTED[query.title]
    assert len(frame) > 0, f"{query.title}: no rows from a store real jobs filled"
    if query.format == "time_series":
        assert frame.columns[0] == "time"
        for column in frame.columns[1:]:
            values = frame[column].dropna().tolist()
            assert values, f"{query.title}: {column} is empty"
            assert all(isinstance(v, int | float | Decimal) for v in values), column


def test_panels_show_what_the_jobs_did(store: Store) -> None:
    """The numbers are the jobs' own: 3 batch runs, the rejected rows, two monitoring
    runs (the first, then after new data retrained the model) and the promotion."""
    by_title = {q.title: q for q in _queries()}

    def frame(title: str) -> pd.DataFrame:
        return _run(store, by_title[title])

    assert frame("Batch runs succeeded")["runs"].tolist() == [3]
    assert frame("Batch runs failed")["runs"].tolist() == [0]
    assert frame("Rows rejected")["rows"].tolist() == [N_BAD]
    assert frame("Why rows were rejected")["rows"].sum() == N_BAD
    scored = frame("Rows scored and rejected per batch run")
    assert scored["scored"].tolist() == [800, 800, 800 - N_BAD]
    assert scored["rejected"].tolist() == [0, 0, N_BAD]
    decisions = frame("Retrain decisions")
    assert len(decisions) == 2
    assert set(decisions["decision"]) <= {"retrain", "keep"}
    assert frame("Promotions and rollbacks")["action"].tolist()[-1] == "initial"
    assert "promoted" in set(frame("Promotions and rollbacks")["action"])
    assert len(frame("Features in the latest monitoring run")) > 1
    steps = frame("Pipeline steps that did work or failed")
    assert {"trigger", "train", "score", "monitor"} <= set(steps["step"])
    if store.dialect == "postgresql":
        hours = frame("Hours since the last successful batch run")["hours"].tolist()
        assert 0 <= float(hours[0]) < 1


def _datasources() -> dict[str, dict[str, Any]]:
    sources = {}
    for path in DATASOURCES.glob("*.yml"):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            sources[source["uid"]] = source
    return sources


def test_every_panel_uses_a_provisioned_datasource() -> None:
    """Each panel (and annotation) names a data source uid and type that Grafana is given."""
    sources = _datasources()
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        uses = [p["datasource"] for p in dashboard["panels"]]
        uses += [
            t["datasource"] for p in dashboard["panels"] for t in p["targets"] if "datasource" in t
        ]
        uses += [a["datasource"] for a in dashboard.get("annotations", {}).get("list", [])]
        for use in uses:
            assert use["uid"] in sources, f"{path.name}: no data source {use['uid']!r}"
            assert sources[use["uid"]]["type"] == use["type"], f"{path.name}: {use}"
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS.glob("*.json")}
    assert {"churnops API", "churnops model health"} <= titles


def test_the_store_datasource_is_the_compose_database() -> None:
    """Grafana's store data source points at the database the jobs write
    (CHURNOPS_DATABASE_URL of the compose stack): same host, port, database and user."""
    from sqlalchemy.engine import make_url

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    urls = {
        service["environment"]["CHURNOPS_DATABASE_URL"]
        for service in compose["services"].values()
        if isinstance(service.get("environment"), dict)
        and "CHURNOPS_DATABASE_URL" in service["environment"]
    }
    assert len(urls) == 1, urls  # every job writes the one store the dashboard reads
    job = make_url(urls.pop())
    source = _datasources()["churnops-store"]
    assert source["url"] == f"{job.host}:{job.port}"
    assert source["jsonData"]["database"] == job.database
    assert source["user"] == job.username
    assert source["secureJsonData"]["password"] == job.password  # the placeholder pair


def test_the_dashboard_covers_the_job_facts() -> None:
    """Rows scored, rejected, run duration, drift share, the estimated metric and the
    trigger decisions each have a panel (issue 15)."""
    sql = " ".join(q.sql for q in _queries())
    for column in ("rows_scored", "rows_rejected", "seconds", "drift_share", "estimated_f1"):
        assert column in sql, column
    for name in ("retrain", "registry_events", "rejected_rows"):
        assert name in sql, name
