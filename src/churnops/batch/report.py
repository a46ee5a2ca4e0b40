"""Who to call: the high-risk customers of a scoring date, ranked, with their reasons."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from churnops.config import Settings
from churnops.errors import DataError

MAX_DECIMALS = 12  # float64 holds ~16 digits; beyond 1 - 1e-12 more digits are noise


def high_risk(
    settings: Settings, scoring_date: date | None = None, top: int = 50
) -> dict[str, Any]:
    """Return the ``top`` high-risk customers of a date (the latest scored date by default)."""
    from churnops.store import get_engine
    from churnops.store.tables import RunScore, ScoringDate, ScoringRun

    scores, dates, runs = RunScore.__table__, ScoringDate.__table__, ScoringRun.__table__
    with get_engine(settings).connect() as conn:
        day = scoring_date or conn.execute(sa.select(sa.func.max(dates.c.scoring_date))).scalar()
        if day is None:
            raise DataError("No scores yet: run `churnops score SOURCE` first.")
        if isinstance(day, str):  # SQLite returns max() of a date column as text
            day = date.fromisoformat(day)
        run = (
            conn.execute(
                sa.select(runs)
                .join(dates, dates.c.run_id == runs.c.id)
                .where(dates.c.scoring_date == day)
            )
            .mappings()
            .first()
        )
        rows = []
        if run is not None:
            # The date's run read directly by its key: a primary-key range scan in rank
            # order on both backends (through the churn_scores view, PostgreSQL may sort
            # the whole run before it has statistics for a freshly written one).
            query = (
                sa.select(
                    scores.c.risk_rank, scores.c.customer_id, scores.c.score, scores.c.reasons
                )
                .where(scores.c.run_id == run["id"], scores.c.score >= run["threshold"])
                .order_by(scores.c.risk_rank)
                .limit(top)
            )
            rows = [
                {
                    **r,
                    "model_name": run["model_name"],
                    "model_version": run["model_version"],
                    "run_id": run["id"],
                }
                for r in conn.execute(query).mappings()
            ]
    total = run["high_risk"] if run is not None else 0  # counted by the run
    if not rows and scoring_date is not None:
        raise DataError(f"No high-risk customers scored for {day.isoformat()}.")
    for row in rows:
        row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
    threshold = run["threshold"] if run is not None else None
    return {
        "scoring_date": day.isoformat(),
        "threshold": threshold,
        "high_risk_total": total,
        "customers": rows,
    }


def to_csv(report: dict[str, Any]) -> str:
    """Render a report as CSV: scores as :func:`score_text`, reasons as :func:`reason_text`."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["risk_rank", "customer_id", "score", "reasons", "model_version"])
    for row in report["customers"]:
        writer.writerow(
            [
                row["risk_rank"],
                row["customer_id"],
                score_text(row["score"]),
                reason_text(row["reasons"]),
                row["model_version"],
            ]
        )
    return buf.getvalue()


def score_text(probability: float) -> str:
    """Return a probability as people compare scores: four significant digits of the gap.

    The riskiest customers' scores crowd near 1 (0.99987, 0.99991), where three decimals
    print them all as 1.000 and the ranking cannot be read. So at least four decimals, and
    as many more as it takes to show four significant digits of the distance to 0 or 1,
    whichever is nearer (trailing zeros past the fourth decimal dropped): 0.4213, 0.95123,
    0.99991, 0.9998712, 0.0001234.
    """
    gap = min(probability, 1.0 - probability)
    decimals = 4 if gap <= 0.0 else max(4, 3 - math.floor(math.log10(gap)))
    whole, fraction = f"{probability:.{min(decimals, MAX_DECIMALS)}f}".split(".")
    return f"{whole}.{fraction[:4]}{fraction[4:].rstrip('0')}"


def reason_text(reasons: Sequence[Mapping[str, Any]]) -> str:
    """Return reasons as people read them, joined by ``; `` (see :func:`reason_sentence`)."""
    return "; ".join(reason_sentence(r) for r in reasons)


def reason_sentence(reason: Mapping[str, Any]) -> str:
    """Return one reason as a person reads it: ``contract = Month-to-month (+0.96 log-odds)``.

    The feature, the customer's value and its signed log-odds contribution (+ pushes towards
    churn): the CLI, the reports, the dashboard and the API's ``text`` all say it this way.
    A missing value reads ``contract is missing``; reasons stored before values were kept
    (no ``value`` key) name the feature alone.
    """
    feature = reason["feature"]
    if "value" not in reason:
        subject = feature
    elif reason["value"] is None:
        subject = f"{feature} is missing"
    else:
        subject = f"{feature} = {_compact(reason['value'])}"
    return f"{subject} ({reason['contribution']:+.2f} log-odds)"


def _compact(value: Any) -> str:
    """Write numbers compactly (whole numbers without decimals, else 3 significant digits)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    rounded = float(f"{value:.3g}")
    return str(int(rounded)) if rounded.is_integer() else f"{rounded:g}"
