"""Concurrent champion changes: every change recorded exactly once, in order, from the right one.

MLflow aliases are last-writer-wins, so without the champion lock three concurrent
rollbacks all "succeeded", two recorded the same "from" version and the history lost one
champion. These tests race real threads and real processes against a real registry (and
the PostgreSQL store's advisory lock) and check the audit trail is one unbroken chain.
"""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from churnops import registry
from churnops.config import Settings
from churnops.registry.promotion import champion_history
from churnops.registry.tracking import configure
from churnops.store import RegistryEvent, session_scope
from tests.conftest import POSTGRES_URL, require_service
from tests.factories import make_customers

VERSIONS = 7  # v1 is the first champion; v2..v6 are rollback targets, v7 the challenger
TARGETS = [str(v) for v in range(2, VERSIONS)]


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with VERSIONS registered versions of one cheaply trained model.

    The model name is unique so the PostgreSQL store's events of other runs never mix in.
    """
    from churnops.training.run import train

    home = tmp_path_factory.mktemp("concurrent") / "home"
    name = f"churn-race-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=home, trials=1, cv_folds=2, model_name=name)
    result = train(
        make_customers(300, seed=3),
        settings,
        target="churn",
        id_column="customer_id",
        families=["logistic"],
    )
    for _ in range(VERSIONS):
        registry.log_training(result, settings)
    return home, name


@pytest.fixture(params=["sqlite", "postgresql"])
def race(request: pytest.FixtureRequest, tmp_path: Path, registry_home: tuple[Path, str]):
    """Settings on a private copy of the registry, with the store the test is parametrised on."""
    source, name = registry_home
    home = tmp_path / "home"
    shutil.copytree(source, home)
    database_url = None
    if request.param == "postgresql":
        require_service(POSTGRES_URL, "PostgreSQL")
        database_url = POSTGRES_URL
    settings = Settings(home=home, model_name=name, database_url=database_url)
    with session_scope(settings) as session:  # PostgreSQL keeps the previous test's events
        session.execute(sa.delete(RegistryEvent).where(RegistryEvent.model_name == name))
    return settings


def _assert_one_chain(settings: Settings, calls: list[tuple[str, str]]) -> None:
    """Every call is one event; each event starts where the previous one ended (from v1)."""
    events = reversed(registry.list_events(settings, limit=1000))
    pairs = [
        (e["from_version"], e["to_version"])
        for e in events
        if e["action"] in ("promoted", "rollback")
    ]
    assert sorted(pairs) == sorted(calls), "each call recorded exactly once"
    champion = "1"
    for source, target in pairs:
        assert source == champion, f"event v{source}->v{target} after v{champion}"
        champion = target
    history = champion_history(settings, configure(settings))
    assert history == ["1", *(target for _, target in pairs)]
    assert registry.get_version(settings, alias="champion").version == champion


def _run_threads(settings: Settings, jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run ``jobs`` at once, each in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(jobs))

    def start(job: Callable[[], Any]) -> Any:
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [f.result() for f in [pool.submit(start, job) for job in jobs]]


@pytest.mark.integration
def test_concurrent_rollbacks_in_threads_form_one_chain(race: Settings) -> None:
    """Rollbacks to v2..v6 at once: distinct "from"s, ordered, complete history."""
    jobs = [lambda v=v: registry.rollback(race, to_version=v) for v in TARGETS]
    results = _run_threads(race, jobs)
    calls = [(r.from_version, r.to_version) for r in results]
    assert len({source for source, _ in calls}) == len(calls)
    _assert_one_chain(race, calls)


@pytest.mark.integration
def test_concurrent_promotes_and_rollbacks_form_one_chain(race: Settings) -> None:
    """A forced promotion racing rollbacks is recorded from the champion it replaced."""
    rollbacks = [lambda v=v: registry.rollback(race, to_version=v) for v in TARGETS[:3]]
    results = _run_threads(race, [*rollbacks, lambda: registry.promote(race, min_delta=-1.0)])
    calls = [(r.from_version, r.to_version) for r in results[:-1]]
    promoted = results[-1]
    assert promoted.decision == "promoted"
    calls.append((promoted.champion_version, promoted.challenger_version))
    _assert_one_chain(race, calls)


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _rollback_in_process(
    home: str, name: str, database_url: str | None, version: str, start: Any
) -> tuple[str, str]:
    start.wait()
    settings = Settings(home=Path(home), model_name=name, database_url=database_url)
    result = registry.rollback(settings, to_version=version)
    return result.from_version, result.to_version


@pytest.mark.integration
def test_concurrent_rollbacks_in_processes_form_one_chain(race: Settings) -> None:
    """The lock holds across processes (the file lock on SQLite, advisory lock on PG)."""
    context = multiprocessing.get_context("spawn")
    with multiprocessing.Manager() as manager:
        start = manager.Barrier(len(TARGETS))
        args = [(str(race.home), race.model_name, race.database_url, v, start) for v in TARGETS]
        # Workers inherit ignored signals from this process (some library in a long test
        # session ignores SIGTERM), and Pool.__exit__ stops them with SIGTERM: reset it in
        # each worker, and let idle workers leave by close/join rather than terminate.
        pool = context.Pool(len(TARGETS), initializer=_default_signals)
        try:
            calls = pool.starmap_async(_rollback_in_process, args).get(timeout=180)
        finally:
            pool.close()
            pool.join()
    assert len({source for source, _ in calls}) == len(calls)
    _assert_one_chain(race, calls)
