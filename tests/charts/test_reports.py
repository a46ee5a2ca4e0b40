"""The high-risk report page prints scores as the CLI and dashboard do (score_text)."""

from __future__ import annotations

from churnops.charts.reports import high_risk_page


def test_scores_keep_the_digits_that_rank() -> None:
    """Scores crowding near 1 stay apart in the key figures and the call list."""
    reason = {"feature": "tenure", "value": 2, "contribution": 1.2}
    customers = [
        {"risk_rank": rank, "customer_id": cid, "score": score, "reasons": [reason]}
        | {"model_name": "churn-model", "model_version": "3"}
        for rank, cid, score in [(1, "A", 0.99991), (2, "B", 0.99987), (3, "C", 0.4213)]
    ]
    html = high_risk_page(
        {"scoring_date": "2026-03-01", "high_risk_total": 3, "customers": customers}
    )
    assert "<b>0.4213 – 0.99991</b><span>Scores listed</span>" in html
    cells = ["<td>1</td><td class='text'>A</td><td>0.99991</td>", "<td>0.99987</td>"]
    assert all(cell in html for cell in cells)
