"""Dashboard benchmark: a store of several dates x a million customers, and its reads.

    .venv/bin/python bench/dashboard.py seed STORE [--customers 1000000] [--dates 5]
    .venv/bin/python bench/dashboard.py data [--customers 1000000] [--dates 5] [--rounds 5]
                                             [--sqlite FILE] [--postgres URL] [--skip-postgres]
    .venv/bin/python bench/dashboard.py pages [the same options]

``seed`` fills a store (an SQLite file path or a PostgreSQL URL) the way ``churnops
score`` leaves it, without a model: per date a ``scoring_runs`` row (segment key, value
column) and its rows through a run's own path from the scores on — the ranker (external
sort, customer-key blocks) and ``RunWriter.swap`` (multi-row inserts on SQLite, COPY on
PostgreSQL). Scores come from a Beta distribution, the same customers every date (in a
different rank order), demo-like segments, a monthly value, and reasons (feature,
contribution, value) for the top 10,000 above the threshold.

``data`` seeds an SQLite file and a throwaway PostgreSQL schema (or reads the stores
given), then times each read of :mod:`churnops.batch.risk` in the same process, median of
``--rounds``. The totals cache is emptied before every timed call, so "first" and "new
filter" numbers always include the scan of the run. One function per measurement
(``measure_*``).

``pages`` renders the pages themselves with Streamlit's AppTest (the server-side script
run a browser waits for: every read, every chart built, the element tree sent), with all
caches empty for a first render and after a widget change: At risk (first render, a new
segment filter, the next page), Customer (first render; the seed has no model, so the
page shows the stored reasons) and Campaign planner (first render, a budget change).
The Model and Monitoring pages read the registry and the monitoring tables, whose size
does not grow with the number of customers, so they are not part of this bench.
Not a test: numbers are printed (see docs/batch.md, "Dashboard queries").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from churnops.batch import risk
from churnops.batch.chunk import RowExtras
from churnops.batch.ranking import RunRanker
from churnops.batch.writer import make_writer
from churnops.config import Settings
from churnops.features.segments import Segment, SegmentKey

POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FIRST_DAY = date(2026, 11, 2)
THRESHOLD = 0.42
REASONS_TOP = 10_000
CHUNK = 100_000
# Demo-like segment columns and how often each level occurs.
SEGMENTS = {
    "senior_citizen": (["0", "1"], [0.84, 0.16]),
    "partner": (["No", "Yes"], [0.52, 0.48]),
    "contract": (["Month-to-month", "One year", "Two year"], [0.55, 0.21, 0.24]),
    "internet_service": (["DSL", "Fiber optic", "No"], [0.34, 0.44, 0.22]),
    "payment_method": (
        ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card"],
        [0.34, 0.23, 0.22, 0.21],
    ),
}
NEW_FILTER = {"contract": "Month-to-month", "internet_service": "Fiber optic"}
FEATURES = ["contract", "tenure", "internet_service", "monthly_charges", "payment_method"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed", help="fill a store with dates x customers")
    seeding.add_argument("store", help="SQLite file path or PostgreSQL URL")
    data = sub.add_parser("data", help="time the dashboard's reads on SQLite and PostgreSQL")
    data.add_argument("--rounds", type=int, default=5)
    data.add_argument("--sqlite", help="an SQLite file seeded before (default: seed one)")
    data.add_argument("--postgres", help="a PostgreSQL URL seeded before (default: seed one)")
    data.add_argument("--skip-postgres", action="store_true")
    pages = sub.add_parser("pages", help="time the dashboard's pages (AppTest) on both stores")
    for option in ("--rounds", "--sqlite", "--postgres"):
        pages.add_argument(option, **({"type": int, "default": 3} if option == "--rounds" else {}))
    pages.add_argument("--skip-postgres", action="store_true")
    for p in (seeding, data, pages):
        p.add_argument("--customers", type=int, default=1_000_000)
        p.add_argument("--dates", type=int, default=5)
    args = parser.parse_args()
    if args.command == "seed":
        seconds = seed(store_url(args.store), args.customers, args.dates)
        print(f"seeded {args.dates} dates x {args.customers:,} customers in {seconds:.1f}s")
        return
    with tempfile.TemporaryDirectory(prefix="churnops-bench-dashboard-") as tmp:
        if args.command == "pages":
            bench_pages(Path(tmp), args)
        else:
            bench_data(Path(tmp), args)


def store_url(store: str) -> str:
    """Return the SQLAlchemy URL of an SQLite file path or a PostgreSQL URL."""
    return store if "://" in store else f"sqlite:///{Path(store).resolve()}"


# --- seed ---------------------------------------------------------------------------------


def segment_key() -> SegmentKey:
    """Return the seeded runs' segment key (as a demo-like contract derives it)."""
    return SegmentKey(tuple(Segment(c, tuple(levels)) for c, (levels, _) in SEGMENTS.items()))


def seed(url: str, customers: int = 1_000_000, dates: int = 5, seed_: int = 0) -> float:
    """Write ``dates`` scoring dates of ``customers`` each into the store at ``url``.

    Returns the seconds taken. The rows take a run's own path from the scores on: the
    ranker (external sort, customer-key blocks) and ``RunWriter.swap``.
    """
    from churnops.store.database import upgrade

    upgrade(url)
    rng = np.random.default_rng(seed_)
    ids = np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 8))
    key = segment_key()
    started = time.perf_counter()
    for d in range(dates):
        day = FIRST_DAY + timedelta(days=7 * d)
        with tempfile.TemporaryDirectory(prefix="churnops-seed-") as scratch:
            ranker = RunRanker(Path(scratch), CHUNK, RowExtras(key, "monthly_charges").fields)
            high = 0
            for start in range(0, customers, CHUNK):
                n = min(CHUNK, customers - start)
                scores = rng.beta(2.0, 5.0, n)
                codes = np.zeros(n, dtype=np.int64)
                for (levels, share), stride in zip(SEGMENTS.values(), key.strides, strict=True):
                    codes += (rng.choice(len(levels), n, p=share) + 1) * stride
                values = np.round(rng.gamma(4.0, 16.0, n), 2)
                chunk_ids = pa.array(ids[start : start + n].tolist(), pa.string())
                ranker.add(chunk_ids, scores, {"segment": codes, "value": values})
                high += int((scores >= THRESHOLD).sum())
            run_id = _run_row(url, day, customers, high, key)
            top = Reasons(rng, min(REASONS_TOP, high), key)
            with make_writer(url) as writer:
                previous = writer.swap(
                    run_id,
                    day,
                    top.tap(ranker.ranked()),
                    reasons=top.rows,
                    blocks=ranker.key_blocks,
                )
                writer.purge(previous)
    return time.perf_counter() - started


def _run_row(url: str, day: date, customers: int, high: int, key: SegmentKey) -> int:
    """Insert a succeeded ``scoring_runs`` row, as a finished run leaves it."""
    from churnops.store.tables import ScoringRun

    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                sa.insert(ScoringRun.__table__).values(
                    started_at=now,
                    finished_at=now,
                    status="succeeded",
                    scoring_date=day,
                    source="bench/dashboard.py seed",
                    engine="seed",
                    model_name="churn-model",
                    model_version="1",
                    threshold=THRESHOLD,
                    rows_in=customers,
                    rows_scored=customers,
                    rows_rejected=0,
                    high_risk=high,
                    seconds=0.0,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    heartbeat_at=now,
                    segments=key.to_json(),
                    value_column="monthly_charges",
                )
            )
            return int(result.inserted_primary_key[0])
    finally:
        engine.dispose()


class Reasons:
    """Made-up reasons (three features with the customer's values) for the top ranks."""

    def __init__(self, rng: np.random.Generator, top: int, key: SegmentKey) -> None:
        self.rng, self.top, self.key = rng, top, key
        self.head: list[tuple[int, int, float]] = []

    def tap(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """Pass the ranked tables through, keeping rank, segment and value of the top."""
        for table in tables:
            if len(self.head) < self.top:
                part = table.slice(0, self.top - len(self.head))
                self.head += zip(
                    part.column("risk_rank").to_pylist(),
                    part.column("segment").to_pylist(),
                    part.column("value").to_pylist(),
                    strict=True,
                )
            yield table

    def rows(self) -> list[tuple[int, str]]:
        """Return (rank, reasons JSON) of the top ranks."""
        out = []
        for rank, code, value in self.head:
            own = {
                "tenure": int(self.rng.integers(0, 12)),
                "monthly_charges": value,
                **self.key.decode(code),
            }
            picked = self.rng.choice(len(FEATURES), 3, replace=False)
            reasons = [
                {
                    "feature": FEATURES[j],
                    "contribution": round(float(self.rng.normal(0.4, 0.3)), 6),
                    "value": own[FEATURES[j]],
                }
                for j in picked
            ]
            out.append((rank, json.dumps(reasons, separators=(",", ":"))))
        return out


# --- data-layer timings -------------------------------------------------------------------


def timed(call: Callable[[], Any], rounds: int) -> float:
    """Return the median seconds of ``rounds`` calls, each with an empty totals cache."""
    seconds = []
    for _ in range(rounds):
        risk._TOTALS.kept.clear()
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure_first_render(s: Settings, rounds: int) -> float:
    """The At risk page's reads on arrival: dates, both overviews, the first page."""

    def render() -> None:
        risk.scoring_dates(s)
        risk.risk_overview(s, None, risk.RiskFilter(above_threshold=False))
        risk.risk_overview(s, None, risk.RiskFilter())
        risk.risk_page(s, None, risk.RiskFilter())

    return timed(render, rounds)


def measure_new_filter(s: Settings, rounds: int) -> float:
    """A new segment filter: its overview and first page (one scan of the run)."""
    flt = risk.RiskFilter(segments=NEW_FILTER)
    return timed(lambda: (risk.risk_overview(s, None, flt), risk.risk_page(s, None, flt)), rounds)


def measure_sort_by_value(s: Settings, rounds: int) -> float:
    """The same filter sorted by expected loss (score x value): a top-N sort."""
    flt = risk.RiskFilter(segments=NEW_FILTER, order="expected_loss")
    return timed(lambda: (risk.risk_overview(s, None, flt), risk.risk_page(s, None, flt)), rounds)


def measure_search(s: Settings, rounds: int) -> float:
    """A customer id prefix search over everyone (overview + page)."""
    flt = risk.RiskFilter(search="C0004", above_threshold=False)
    return timed(lambda: (risk.risk_overview(s, None, flt), risk.risk_page(s, None, flt)), rounds)


def measure_next_page(s: Settings, rounds: int) -> float:
    """A later page of a filter already counted (the totals cache is warm)."""
    flt = risk.RiskFilter(segments=NEW_FILTER)
    risk.risk_overview(s, None, flt)

    def page() -> None:
        risk.risk_page(s, None, flt, offset=5_000, limit=50)

    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        page()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure_export(s: Settings, rounds: int) -> float:
    """The whole list above the threshold under the filter, as CSV lines."""
    flt = risk.RiskFilter(segments=NEW_FILTER)
    columns = list(SEGMENTS)

    def export() -> int:
        return sum(1 for _ in risk.export_csv(risk.risk_export(s, None, flt), columns))

    return timed(export, rounds)


def measure_history(s: Settings, rounds: int) -> float:
    """One customer's scores across every date."""
    return timed(lambda: risk.customer_history(s, "C00123456"), rounds)


def measure_campaign(s: Settings, rounds: int) -> float:
    """Every score, value and id of the latest date, in rank order."""
    return timed(lambda: risk.campaign_scores(s), rounds)


MEASUREMENTS: dict[str, tuple[Callable[[Settings, int], float], float | None]] = {
    "At risk first render (dates + overviews + page)": (measure_first_render, 2.0),
    "new filter (overview + page)": (measure_new_filter, 1.0),
    "filter sorted by expected loss": (measure_sort_by_value, 1.0),
    "id prefix search (overview + page)": (measure_search, 1.0),
    "next page of a counted filter": (measure_next_page, None),
    "customer history (all dates)": (measure_history, None),
    "campaign scores (all rows)": (measure_campaign, 1.0),
    "CSV export of the filter (above threshold)": (measure_export, None),
}


def bench_data(tmp: Path, args: argparse.Namespace) -> None:
    """Seed (unless given) both stores, then print one row per measurement."""
    with seeded_stores(tmp, args) as stores:
        results = {
            name: {
                label: measure(Settings(home=tmp / "home", database_url=url), args.rounds)
                for label, (measure, _) in MEASUREMENTS.items()
            }
            for name, url in stores.items()
        }
    print_table(results, MEASUREMENTS, args, "totals cache emptied before each call")


@contextmanager
def seeded_stores(tmp: Path, args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Yield {backend: URL} of the stores to time, seeded here unless given."""
    stores: dict[str, str] = {}
    with _postgres(args) as pg_url:
        if args.sqlite:
            stores["SQLite"] = store_url(args.sqlite)
        else:
            stores["SQLite"] = f"sqlite:///{tmp / 'dashboard.db'}"
            seconds = seed(stores["SQLite"], args.customers, args.dates)
            print(f"seed SQLite: {args.dates} x {args.customers:,} rows in {seconds:.1f}s")
        if pg_url is not None:
            stores["PostgreSQL"] = pg_url
            if not args.postgres:
                seconds = seed(pg_url, args.customers, args.dates)
                print(f"seed PostgreSQL: {args.dates} x {args.customers:,} rows in {seconds:.1f}s")
        yield stores


def print_table(
    results: dict[str, dict[str, float]],
    measurements: dict[str, tuple[Any, float | None]],
    args: argparse.Namespace,
    note: str,
) -> None:
    """Print one markdown row per measurement, one column per store."""
    names = list(results)
    print(
        f"\n{args.dates} dates x {args.customers:,} customers, median of {args.rounds} "
        f"(seconds; {note})\n"
    )
    print(f"| measurement | {' | '.join(names)} | target |")
    print(f"|---|{'---|' * len(names)}---|")
    for label, (_, target) in measurements.items():
        cells = " | ".join(f"{results[n][label]:.3f}" for n in names)
        print(f"| {label} | {cells} | {f'≤ {target:.0f} s' if target else ''} |")


# --- page renders (Streamlit AppTest) -----------------------------------------------------


def app(page: str) -> Any:
    """A signed-in AppTest of the dashboard, on ``page``, with every cache empty."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from churnops.dashboard import launch
    from churnops.serving.auth import Principal

    st.cache_data.clear()
    st.cache_resource.clear()
    risk._TOTALS.kept.clear()
    at = AppTest.from_file(str(launch.APP), default_timeout=300)
    at.session_state["principal"] = Principal("bench", "analyst")
    at.session_state["key"] = ""
    at.session_state["checked_at"] = 1e18
    if page != "at_risk":
        at.run()  # lands on the default page first, which fills some caches
        at.switch_page(f"pages/{page}.py")
        st.cache_data.clear()
        st.cache_resource.clear()
        risk._TOTALS.kept.clear()
    return at


def rendered(at: Any) -> float:
    """Run ``at`` once; return the seconds, failing loudly on a page exception."""
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"page failed: {[e.value for e in at.exception]}")
    return seconds


def median_of(rounds: int, one: Callable[[], float]) -> float:
    return statistics.median(one() for _ in range(rounds))


def page_at_risk_first(rounds: int) -> float:
    return median_of(rounds, lambda: rendered(app("at_risk")))


def after_change(page: str, change: Callable[[Any], Any]) -> Callable[[int], float]:
    """Measure the rerun after ``change`` (a widget set) on a rendered ``page``.

    What the session read before the change stays cached, as it would in a browser.
    """

    def measure(rounds: int) -> float:
        def one() -> float:
            at = app(page)
            rendered(at)
            change(at)
            return rendered(at)

        return median_of(rounds, one)

    return measure


def page_customer_first(rounds: int) -> float:
    def one() -> float:
        at = app("customer")
        at.session_state["customer_id"] = "C00123456"
        return rendered(at)

    return median_of(rounds, one)


def page_campaign_first(rounds: int) -> float:
    return median_of(rounds, lambda: rendered(app("campaign")))


PAGES: dict[str, tuple[Callable[[int], float], float | None]] = {
    "At risk: first render": (page_at_risk_first, 2.0),
    "At risk: new segment filter": (
        after_change(
            "at_risk", lambda at: at.selectbox(key="seg:contract").set_value("Month-to-month")
        ),
        1.0,
    ),
    "At risk: next page": (
        after_change("at_risk", lambda at: at.number_input(key="page_no").set_value(2)),
        1.0,
    ),
    "Customer: first render": (page_customer_first, 2.0),
    "Campaign planner: first render": (page_campaign_first, 2.0),
    "Campaign planner: budget change": (
        after_change("campaign", lambda at: at.number_input(key="budget").set_value(20_000.0)),
        1.0,
    ),
}


def bench_pages(tmp: Path, args: argparse.Namespace) -> None:
    """Seed (unless given) both stores, then time each page as AppTest renders it."""
    from churnops.config import get_settings

    results: dict[str, dict[str, float]] = {}
    with seeded_stores(tmp, args) as stores:
        for name, url in stores.items():
            os.environ.update(CHURNOPS_HOME=str(tmp / "home"), CHURNOPS_DATABASE_URL=url)
            get_settings.cache_clear()
            results[name] = {label: measure(args.rounds) for label, (measure, _) in PAGES.items()}
    print_table(results, PAGES, args, "every cache empty before the timed render")


@contextmanager
def _postgres(args: argparse.Namespace) -> Iterator[str | None]:
    """Yield the PostgreSQL URL to use: given, a throwaway schema, or None when skipped."""
    if args.skip_postgres:
        yield None
        return
    if args.postgres:
        yield args.postgres
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
