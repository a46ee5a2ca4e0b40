"""Prometheus alerts and the Grafana dashboard only use series the API really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.factories import loyal_customer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERIES = re.compile(r"\b(churnops_[a-z_]+)")
PROMETHEUS_OWN = {"up"}


def _expressions() -> list[str]:
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "churnops-api.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return exprs


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
    expressions = _expressions()
    assert expressions
    for expr in expressions:
        for series in SERIES.findall(expr):
            assert series in names, f"{series} (in {expr!r}) is not exported"
    # The label values the queries pin exist too.
    assert 'churnops_request_latency_seconds_bucket{le="0.001",route="/v1/predict"}' in exposed
    assert re.search(r'churnops_model_info\{[^}]*role="champion"[^}]*\} 1\.0', exposed)
    assert any('variant="champion"' in line for line in exposed.splitlines())
