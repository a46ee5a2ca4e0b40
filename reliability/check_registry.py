"""Concurrent promote/rollback calls: the champion history stays complete and ordered.

Why: operators, schedulers and CI pipelines move the champion at the same time, and MLflow
aliases are last-writer-wins. After N concurrent calls (threads released together by a
barrier: 3 in 4 are `rollback --to V`, 1 in 4 `promote` with a gate every challenger
passes), every call that reported success must appear exactly once in `registry_events`,
the events must chain (each one's `from` is the previous one's `to`), the
`churnops.champion_history` tag must be the starting history plus each event's `to` in
order, and the `champion` alias must be the last event's `to`.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import sqlalchemy as sa
from tests.factories import make_customers

from reliability.common import Budget, Home, Result, copy_home, scratch


def run(home: Home, budget: Budget) -> Result:
    """`budget.registry_calls` concurrent calls on a private copy with four versions."""
    from churnops.errors import ChurnopsError
    from churnops.registry.promotion import HISTORY_TAG, promote, rollback
    from churnops.registry.tracking import configure
    from churnops.stages import train_and_register

    started = time.monotonic()
    work = scratch("registry")
    own = copy_home(home, work / "home")
    settings = own.settings(trials=2, cv_folds=3)
    for seed in (21, 22):  # four versions to move between
        summary = train_and_register(
            make_customers(800, seed=seed), settings, target="churn", id_column="customer_id"
        )
        own.versions.append(str(summary["model_version"]))
    client = configure(settings)
    name = settings.model_name
    start_history: list[str] = _history(client, name, HISTORY_TAG)
    engine = sa.create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        last_id = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM registry_events")).scalar()
    start_champion = client.get_model_version_by_alias(name, "champion").version

    rng = random.Random(7)
    plan = [
        ("promote", None) if rng.random() < 0.25 else ("rollback", rng.choice(own.versions))
        for _ in range(budget.registry_calls)
    ]
    barrier = threading.Barrier(len(plan))
    outcomes: list[tuple[str, str]] = []  # (kind, text); kind: ok / refused / error
    lock = threading.Lock()

    def call(action: str, version: str | None) -> None:
        barrier.wait(120)
        try:
            if action == "promote":
                result: Any = promote(settings, min_delta=-1.0)
                kind = "ok" if result.decision == "promoted" else "refused"
                text = f"promote: {result.decision}"
            else:
                rollback(settings, to_version=version)
                kind, text = "ok", f"rollback to v{version}"
        except ChurnopsError as exc:  # e.g. "already the champion": a declared refusal
            kind, text = "refused", f"{action}: {type(exc).__name__}: {exc.message[:100]}"
        except Exception as exc:
            kind, text = "error", f"{action}: {type(exc).__name__}: {str(exc)[:150]}"
        with lock:
            outcomes.append((kind, text))

    threads = [threading.Thread(target=call, args=p, daemon=True) for p in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)

    with engine.connect() as conn:
        events = conn.execute(
            sa.text(
                "SELECT action, from_version, to_version FROM registry_events "
                "WHERE id > :last AND model_name = :name AND action IN ('promoted', 'rollback') "
                "ORDER BY id"
            ),
            {"last": last_id, "name": name},
        ).all()
    engine.dispose()
    history = _history(configure(settings), name, HISTORY_TAG)
    alias = configure(settings).get_model_version_by_alias(name, "champion").version
    ok = sum(k == "ok" for k, _ in outcomes)
    errors = [t for k, t in outcomes if k == "error"]
    problems = []
    if len(events) != ok:
        problems.append(f"{ok} calls succeeded but {len(events)} events were recorded")
    previous = str(start_champion)
    breaks = 0
    for _action, frm, to in events:
        if str(frm) != previous:
            breaks += 1
        previous = str(to)
    if breaks:
        problems.append(f"{breaks} event(s) whose 'from' is not the previous event's 'to'")
    expected_history = start_history + [str(to) for _, _, to in events]
    if history != expected_history:
        problems.append(
            f"history tag has {len(history)} entries, the events say {len(expected_history)}"
            + ("" if len(history) != len(expected_history) else " (different order/content)")
        )
    if events and str(alias) != str(events[-1][2]):
        problems.append(f"alias champion = v{alias}, last event says v{events[-1][2]}")
    if errors:
        problems.append(f"{len(errors)} undeclared error(s): {errors[0]}")
    refused = sum(k == "refused" for k, _ in outcomes)
    return Result(
        "registry concurrency",
        f"{len(plan)} concurrent calls: {ok} succeeded, {refused} refused, {len(errors)} errors; "
        f"{len(events)} events, {breaks} chain breaks, history "
        f"{'=' if history == expected_history else '≠'} events, alias "
        f"{'=' if events and str(alias) == str(events[-1][2]) else '≠'} last event",
        "every success recorded once, in a chain; history tag and alias agree with the events",
        not problems,
        "; ".join(problems),
        time.monotonic() - started,
    )


def _history(client: Any, name: str, tag: str) -> list[str]:
    import json

    model = client.get_registered_model(name)
    return [str(v) for v in json.loads((model.tags or {}).get(tag, "[]"))]
