"""Static report pages built from the dashboard's charts (what a manager e-mails is what
they saw on screen)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from churnops.charts.html import Section, kpis, page, table
from churnops.charts.risk import score_distribution, top_reason_counts


def high_risk_page(report: Mapping[str, Any]) -> str:
    """Return ``churnops report high-risk --format html``: key figures, the listed
    customers' score distribution and most frequent reasons, then the call list.

    ``report`` is what :func:`churnops.batch.high_risk` returns; the threshold line is
    drawn when the report carries ``threshold``.
    """
    from churnops.batch.report import reason_text, score_text

    rows = report["customers"]
    figures: dict[str, Any] = {
        "Customers above the threshold": f"{report['high_risk_total']:,}",
        "Listed": f"{len(rows):,}",
    }
    if rows:
        low, high = rows[-1]["score"], rows[0]["score"]
        figures["Scores listed"] = f"{score_text(low)} – {score_text(high)}"
        figures["Model"] = f"{rows[0]['model_name']} v{rows[0]['model_version']}"
    sections: list[Section] = [
        kpis(figures),
        "<p class='muted'>The riskiest customers first; reasons are the strongest "
        "contributions to each customer's score.</p>",
    ]
    if rows:
        sections += [
            score_distribution([r["score"] for r in rows], report.get("threshold")),
            top_reason_counts(rows),
        ]
    sections.append(
        table(
            ["rank", "customer", "score", "reasons"],
            [
                [
                    r["risk_rank"],
                    r["customer_id"],
                    score_text(r["score"]),
                    reason_text(r["reasons"]),
                ]
                for r in rows
            ],
            text_columns=["customer", "reasons"],
        )
    )
    return page(f"High-risk customers, {report['scoring_date']}", sections)
