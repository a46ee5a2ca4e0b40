"""What every page needs: the settings, who is signed in, the scoring date, empty states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

import streamlit as st

from churnops.config import Settings
from churnops.dashboard import access, reads
from churnops.serving.auth import Principal


@dataclass(frozen=True)
class Context:
    """The page's settings, its cache key for the store, and the signed-in principal."""

    settings: Settings
    store: str
    principal: Principal


def context() -> Context:
    """Return the page's context (the entry script has signed the visitor in)."""
    settings = reads.settings()
    principal = st.session_state.get("principal") or access.NO_AUTH
    return Context(settings, reads.store_key(settings), principal)


def empty(message: str) -> NoReturn:
    """Say what to run next and end the page."""
    st.info(message)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


NO_SCORES = "No scores yet: run `churnops score SOURCE` (a CSV, Parquet or SQL table) first."


def pick_date(ctx: Context) -> date:
    """The scoring date picker in the sidebar, shared by the pages (default: the latest)."""
    dates = reads.scoring_dates(ctx.settings, ctx.store)
    if not dates:
        empty(NO_SCORES)
    current = st.session_state.get("day")
    index = dates.index(current) if current in dates else 0
    day = st.sidebar.selectbox(
        "Scoring date", dates, index=index, format_func=date.isoformat, key="day_picker"
    )
    st.session_state["day"] = day
    return day


def money(value: float | None) -> str:
    """Format an amount without a currency (the data says which one it is)."""
    return "—" if value is None else f"{value:,.0f}"


def share(part: float, whole: float) -> str:
    """Format ``part / whole`` as a percentage."""
    return f"{part / whole:.1%}" if whole else "—"


def value_text(value: Any) -> str:
    """Format a feature value for people (compact numbers, '(missing)')."""
    if value is None or (isinstance(value, float) and value != value):
        return "(missing)"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.3g}"
    return str(value)
