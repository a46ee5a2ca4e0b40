"""The stage calls the pages make, cached for a short while across sessions.

Every function here is one stage function (no SQL, no logic of its own) behind
``st.cache_data``: a page rerun on each widget change must not query the store again for
what it just read. Arguments are plain values so the cache can key them; ``settings``
is left out of the key (a leading underscore) and the store it points at is keyed by
``store`` instead. Short TTLs keep a fresh scoring run or monitoring run visible soon.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import streamlit as st

from churnops.config import Settings, get_settings

SHORT = 30  # seconds: lists that a new run changes
LONG = 600  # seconds: what a model version fixes (its training data, its calibration)


def settings() -> Settings:
    """Return the settings the server was started with (``CHURNOPS_*``, churnops.yaml)."""
    return get_settings()


def store_key(s: Settings) -> str:
    """Return what identifies the data a cached read came from."""
    return f"{s.resolved_database_url}|{s.resolved_tracking_uri}|{s.model_name}"


def risk_filter(segments: tuple[tuple[str, str], ...], search: str, above: bool, order: str):
    """Build the batch layer's filter from plain, hashable values."""
    from churnops.batch.risk import RiskFilter

    return RiskFilter(dict(segments), search or None, above, order)  # type: ignore[arg-type]


@st.cache_data(ttl=SHORT, show_spinner=False)
def scoring_dates(_s: Settings, store: str) -> list[date]:
    """The scoring dates, newest first."""
    from churnops.batch.risk import scoring_dates as read

    return read(_s)


@st.cache_data(ttl=SHORT, show_spinner=False)
def risk_overview(
    _s: Settings, store: str, day: date, segments: tuple, search: str, above: bool, order: str
) -> dict[str, Any]:
    """KPIs and segment levels of a date under a filter."""
    from churnops.batch.risk import risk_overview as read

    return read(_s, day, risk_filter(segments, search, above, order))


@st.cache_data(ttl=SHORT, show_spinner=False)
def risk_page(
    _s: Settings,
    store: str,
    day: date,
    segments: tuple,
    search: str,
    above: bool,
    order: str,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """One page of the ranked list under a filter."""
    from churnops.batch.risk import risk_page as read

    return read(_s, day, risk_filter(segments, search, above, order), offset, limit)


def risk_csv(
    s: Settings, day: date, segments: tuple, search: str, above: bool, order: str, columns: list
) -> str:
    """The whole filtered list as CSV (built when the download is clicked, not cached)."""
    from churnops.batch.risk import export_csv, risk_export

    rows = risk_export(s, day, risk_filter(segments, search, above, order))
    return "".join(export_csv(rows, columns))


@st.cache_resource(ttl=SHORT, show_spinner=False, max_entries=4)
def campaign_scores(
    _s: Settings, store: str, day: date
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """A date's scores, values and ids in rank order (shared, read-only: pages never write).

    A resource, not data: ``cache_data`` would pickle a million ids into the cache and
    copy them out again on every rerun (~0.2 s each way at 1M customers).
    """
    from churnops.batch.risk import campaign_scores as read

    return read(_s, day)


@st.cache_data(ttl=SHORT, show_spinner=False, max_entries=64)
def customer_profile(_s: Settings, store: str, customer_id: str) -> dict[str, Any]:
    """One customer's history and explained latest score."""
    from churnops.stages import customer_profile as read

    return read(_s, customer_id)


@st.cache_data(ttl=LONG, show_spinner=False, max_entries=8)
def typical_customer(_s: Settings, store: str, version: str) -> dict[str, dict[str, Any]]:
    """The typical non-churner of a version's training data."""
    from churnops.stages import typical_customer as read

    return read(_s, version)


@st.cache_data(ttl=SHORT, show_spinner=False)
def model_overview(_s: Settings, store: str) -> dict[str, Any]:
    """Champion and challenger side by side."""
    from churnops.registry.overview import model_overview as read

    return read(_s)


@st.cache_data(ttl=SHORT, show_spinner=False)
def registry_events(_s: Settings, store: str, limit: int = 100) -> list[dict[str, Any]]:
    """Promotions, kept decisions and rollbacks, newest first."""
    from churnops.registry.promotion import list_events

    return list_events(_s, limit)


@st.cache_data(ttl=SHORT, show_spinner=False)
def monitoring_history(_s: Settings, store: str, limit: int = 100) -> dict[str, Any]:
    """Monitoring runs (oldest first) with their per-feature PSI and performance points."""
    from churnops.monitoring.store import feature_psi, performance_points, run_history

    runs = run_history(_s, limit)
    ids = [r["id"] for r in runs]
    return {
        "runs": runs,
        "psi": feature_psi(_s, ids),
        "performance": performance_points(_s, ids),
    }


@st.cache_data(ttl=SHORT, show_spinner=False)
def pipeline_steps(_s: Settings, store: str) -> list[dict[str, Any]]:
    """Stored ``pipeline run`` steps, oldest first."""
    from churnops.orchestration.pipeline import list_steps

    return list_steps(_s)


def forget() -> None:
    """Drop every cached read (after the registry changed from this dashboard)."""
    st.cache_data.clear()
    campaign_scores.clear()
