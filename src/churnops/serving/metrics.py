"""Prometheus metrics of the scoring service, one registry per app (tests build many apps).

With several workers (``--workers N``) each process has its own counters; set
``PROMETHEUS_MULTIPROC_DIR`` (``churnops serve`` does) and ``/metrics`` aggregates them
through prometheus-client's multiprocess collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_PROBE_SECONDS = 0.1
RELOAD_OUTCOMES = ("ok", "failed")
"""The ``outcome`` label values of ``churnops_reloads_total`` (serving/state.py sets them)."""


class Metrics:
    """The service's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "churnops_requests",
            "HTTP requests by route, status and serving variant.",
            ["route", "status", "variant"],
            registry=r,
        )
        self.latency = Histogram(
            "churnops_request_latency_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.probability = Histogram(
            "churnops_probability",
            "Predicted churn probabilities by variant.",
            ["variant"],
            buckets=PROBABILITY_BUCKETS,
            registry=r,
        )
        self.churn_flags = Counter(
            "churnops_churn_flags",
            "Customers flagged as churners by variant.",
            ["variant"],
            registry=r,
        )
        self.predictions = Counter(
            "churnops_predictions", "Customers scored by variant.", ["variant"], registry=r
        )
        self.model_info = Gauge(
            "churnops_model_info",
            "The model versions loaded (1 = serving).",
            ["role", "name", "version", "source"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.reloads = Counter(
            "churnops_reloads", "Model reloads by outcome.", ["outcome"], registry=r
        )
        # Every outcome exported at 0 from the start: a series that first appears at 1
        # has no earlier sample, so increase() sees no rise and ChurnopsReloadFailing
        # would miss the first failed reload (deploy/prometheus/tests/alerts_test.yml).
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome)
        self.audit_dropped = Counter(
            "churnops_audit_dropped",
            "Audit or prediction-log records dropped (queue full or store error).",
            registry=r,
        )
        self.shadow_errors = Counter(
            "churnops_shadow_errors", "Shadow scorings that failed.", registry=r
        )
        self.ratelimit_redis_unavailable = Counter(
            "churnops_ratelimit_redis_unavailable",
            "Rate-limit decisions made without Redis (unreachable), by the configured policy.",
            ["policy"],
            registry=r,
        )
        self.scoring_rejected = Counter(
            "churnops_scoring_rejected",
            "Batch requests refused with 503 because every scoring slot was busy.",
            registry=r,
        )
        self.loop_lag = Histogram(
            "churnops_event_loop_lag_seconds",
            "How late the event loop woke a probe sleeping 0.1 s: a stall that delays every "
            "request in flight (garbage collection, blocking work on the loop).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._children: dict[str, tuple[Any, Any, Any]] = {}

    async def watch_loop_lag(self, every: float = LAG_PROBE_SECONDS) -> None:
        """Measure the event loop's lag for ever (a lifespan task, cancelled at shutdown).

        Costs one wake-up per ``every`` seconds; a request-time measure could not see a
        stall that falls between requests' own timestamps.
        """
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(every)
            self.loop_lag.observe(max(loop.time() - start - every, 0.0))

    def observe_one(self, variant: str, probability: float, churn: bool) -> None:
        """Record one prediction (the single-customer hot path: cached label children)."""
        children = self._children.get(variant)
        if children is None:
            children = self._children[variant] = (
                self.predictions.labels(variant),
                self.probability.labels(variant),
                self.churn_flags.labels(variant),
            )
        predictions, hist, flags = children
        predictions.inc()
        hist.observe(probability)
        if churn:
            flags.inc()

    def observe_probabilities(
        self, variant: str, probabilities: np.ndarray, threshold: float
    ) -> None:
        """Record a batch of probabilities in one pass (one histogram update per bucket)."""
        n = len(probabilities)
        if n == 0:
            return
        self.predictions.labels(variant).inc(n)
        flags = int(np.count_nonzero(probabilities >= threshold))
        if flags:
            self.churn_flags.labels(variant).inc(flags)
        hist = self.probability.labels(variant)
        if n == 1:
            hist.observe(float(probabilities[0]))
            return
        buckets = getattr(hist, "_buckets", None)
        total = getattr(hist, "_sum", None)
        if buckets is None or total is None or len(buckets) != len(PROBABILITY_BUCKETS) + 1:
            for p in probabilities.tolist():  # pragma: no cover - other client internals
                hist.observe(p)
            return
        # prometheus-client counts each value in the first bucket whose bound it does not
        # exceed (cumulated at scrape time); searchsorted(side="left") is that bucket.
        bounds = np.array([*PROBABILITY_BUCKETS, np.inf])
        counts = np.bincount(
            np.searchsorted(bounds, probabilities, side="left"), minlength=len(bounds)
        )
        for bucket, count in zip(buckets, counts.tolist(), strict=False):
            if count:
                bucket.inc(count)
        total.inc(float(np.sum(probabilities)))

    def set_model(self, role: str, predictor: object | None, previous: object | None) -> None:
        """Point the model-info gauge at the serving version of ``role``."""
        if previous is not None:
            with contextlib.suppress(KeyError):
                self.model_info.remove(
                    role,
                    previous.name,  # type: ignore[attr-defined]
                    previous.version,  # type: ignore[attr-defined]
                    previous.source,  # type: ignore[attr-defined]
                )
        if predictor is not None:
            self.model_info.labels(
                role,
                predictor.name,  # type: ignore[attr-defined]
                predictor.version,  # type: ignore[attr-defined]
                predictor.source,  # type: ignore[attr-defined]
            ).set(1)

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
