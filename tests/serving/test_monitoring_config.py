"""Prometheus alerts and the Grafana dashboards only use series the API really exports.

A query on a series or label value the app never exports is silently empty: the panel
shows "no data" and the alert never fires. Every check here runs against a live app's
``/metrics`` rather than a list kept by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from churnops.errors import RegistryError
from churnops.serving.metrics import RELOAD_OUTCOMES
from tests.factories import loyal_customer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERIES = re.compile(r"\b(churnops_[a-z_]+)")
# A selector with its matchers: churnops_x{a="b", c=~"d"}.
SELECTOR = re.compile(r"\b(churnops_[a-z_]+)\{([^}]*)\}")
EQUALS = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
# A counter an alert watches with increase(): the first event must be a rise from 0.
INCREASE = re.compile(r"increase\(\s*(churnops_[a-z_]+)(?:\{([^}]*)\})?\s*\[")
SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", re.MULTILINE)


def _alert_expressions() -> list[str]:
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    """Return the PromQL of every Prometheus panel of every provisioned dashboard."""
    exprs = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            if panel.get("datasource", {}).get("type") == "prometheus":
                exprs += [t["expr"] for t in panel["targets"]]
    return exprs


def _samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    """Parse the text exposition into (name, labels, value); comments are skipped."""
    return [
        (name, dict(EQUALS.findall(labels or "")), float(value))
        for name, labels, value in SAMPLE.findall(exposition)
    ]


def _has(samples: list[tuple[str, dict[str, str], float]], name: str, pinned: str) -> bool:
    """Return True when a sample of ``name`` carries every ``label="value"`` in ``pinned``."""
    wanted = dict(EQUALS.findall(pinned))
    return any(n == name and wanted.items() <= labels.items() for n, labels, _ in samples)


def test_alerts_and_dashboard_query_series_the_api_exports(api: Any) -> None:
    """After a prediction, every churnops_* series and label value queried is in /metrics."""
    assert api.post("/v1/predict", loyal_customer()).status_code == 200
    exposed = api.client.get("/metrics").text
    # Sample names the app can export: counters _total, histograms _bucket/_sum/_count.
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", exposed, flags=re.MULTILINE))
    names = set()
    for name, kind in families:
        if kind == "histogram":
            names |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:  # counters are declared with their _total sample name in this format
            names.add(name if kind != "counter" or name.endswith("_total") else name + "_total")
    expressions = _alert_expressions() + _dashboard_expressions()
    assert len(_dashboard_expressions()) >= 7  # the API dashboard's panels are all found
    samples = _samples(exposed)
    for expr in expressions:
        for series in SERIES.findall(expr):
            assert series in names, f"{series} (in {expr!r}) is not exported"
        # Every label value a query pins with `=` is one the app exports (a typo such as
        # variant="champoin" would otherwise give an empty panel, never an error).
        for series, matchers in SELECTOR.findall(expr):
            assert _has(samples, series, matchers), f"no {series}{{{matchers}}} in /metrics"
    assert re.search(r'churnops_model_info\{[^}]*role="champion"[^}]*\} 1\.0', exposed)


def test_counters_alerted_on_exist_at_zero_before_their_first_event(
    make_api: Callable[..., Any], champion: Any
) -> None:
    """A fresh app exports every series an increase() alert watches, at 0; a failed reload
    then moves the failed outcome from 0 to 1, the rise ChurnopsReloadFailing needs.

    A series that first appears at 1 has no earlier sample, so increase() sees no rise
    and the alert misses the first event (issue 15; the promtool case "a failed-reload
    series that first appears at 1 cannot alert" shows it).
    """
    calls = {"n": 0}

    def loader(alias: str) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RegistryError("Cannot load models:/churn-model/9: the store is down")
        return champion

    api = make_api(loader=loader)
    assert api.client.get("/readyz").status_code in (200, 503)
    watched = [m.groups() for expr in _alert_expressions() for m in INCREASE.finditer(expr)]
    assert {name for name, _ in watched} >= {
        "churnops_reloads_total",
        "churnops_audit_dropped_total",
    }
    before = _samples(api.client.get("/metrics").text)
    for name, matchers in watched:
        wanted = dict(EQUALS.findall(matchers or ""))
        values = [v for n, labels, v in before if n == name and wanted.items() <= labels.items()]
        assert values == [0.0], f"{name}{{{matchers or ''}}} is {values or 'absent'} at start"
    for outcome in RELOAD_OUTCOMES:
        assert _has(before, "churnops_reloads_total", f'outcome="{outcome}"')

    _wait_ready(api)
    assert api.post("/v1/admin/reload", key="admin").status_code == 409
    after = _samples(api.client.get("/metrics").text)
    failed = [
        v
        for n, labels, v in after
        if n == "churnops_reloads_total" and labels == {"outcome": "failed"}
    ]
    assert failed == [1.0]


def test_reload_outcomes_are_the_ones_the_model_state_counts() -> None:
    """The pre-initialised outcomes are exactly the label values serving/state.py uses,
    so a new outcome cannot appear from nothing (and miss its first increase)."""
    source = (ROOT / "src" / "churnops" / "serving" / "state.py").read_text()
    used = set(re.findall(r'reloads\.labels\(\s*"(\w+)"\s*\)', source))
    assert used, "serving/state.py no longer counts reloads by outcome"
    assert used == set(RELOAD_OUTCOMES)


def _wait_ready(api: Any) -> None:
    """Wait for the lifespan's initial load (the loader runs in a thread)."""
    import time

    deadline = time.monotonic() + 5
    while api.client.get("/readyz").status_code != 200:  # bounded by the deadline
        if time.monotonic() > deadline:
            pytest.fail("the app never became ready")
        time.sleep(0.05)
