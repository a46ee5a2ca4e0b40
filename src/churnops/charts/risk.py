"""Charts of who is at risk and why, and of what a campaign is expected to earn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from churnops.charts.theme import MUTED, RISK, SAFE, empty, figure

if TYPE_CHECKING:
    from churnops.campaign import CampaignPlan

Reason = Mapping[str, Any]  # {"feature", "contribution" (log-odds), optional "value"}


def score_distribution(
    scores: Sequence[float] | np.ndarray, threshold: float | None, *, bins: int = 50
) -> go.Figure:
    """Return a histogram of churn scores, split at the threshold.

    Binned here with numpy, not by plotly.js: a chart of a million customers carries 50
    counts, not a million numbers. The threshold is a bin edge, so the alarm-coloured
    bars count exactly the customers at or above it.
    """
    fig = figure("Score distribution", xaxis_title="churn score", yaxis_title="customers")
    values = np.asarray(scores, dtype=float)
    values = np.clip(values[~np.isnan(values)], 0.0, 1.0)
    if len(values) == 0:
        return empty(fig)
    edges = np.linspace(0.0, 1.0, bins + 1)
    if threshold is not None and 0.0 < threshold < 1.0:
        edges = np.unique(np.append(edges, threshold))
    counts, edges = np.histogram(values, bins=edges)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    above = edges[:-1] >= threshold if threshold is not None else np.zeros(len(counts), bool)
    for name, mask, colour in (
        ("below the threshold", ~above, MUTED),
        ("at or above the threshold", above, RISK),
    ):
        if counts[mask].sum() > 0:
            fig.add_trace(
                go.Bar(
                    x=centres[mask],
                    y=counts[mask],
                    width=widths[mask],
                    name=name,
                    marker_color=colour,
                    hovertemplate="score %{x:.2f}: %{y:,} customers<extra></extra>",
                )
            )
    if threshold is not None:
        fig.add_vline(
            x=threshold,
            line={"color": RISK, "dash": "dash"},
            annotation_text=f"threshold {threshold:.2f}",
        )
    fig.update_layout(bargap=0.0)
    return fig


def top_reason_counts(rows: Sequence[Mapping[str, Any]], *, top: int = 15) -> go.Figure:
    """Return how often each feature is among the listed customers' reasons, by direction.

    The team sees at a glance what drives this list (and what protects it), which a
    table of individual reasons hides.
    """
    raises: Counter[str] = Counter()
    lowers: Counter[str] = Counter()
    for row in rows:
        for reason in row.get("reasons") or []:
            contribution = reason["contribution"]
            if contribution > 0:
                raises[reason["feature"]] += 1
            elif contribution < 0:
                lowers[reason["feature"]] += 1
    fig = figure("Most frequent reasons", xaxis_title="customers", barmode="stack")
    features = sorted(raises.keys() | lowers.keys(), key=lambda f: (-raises[f] - lowers[f], f))
    if not features:
        return empty(fig)
    shown = features[:top][::-1]  # the most frequent at the top
    for name, counts, colour in (("raises risk", raises, RISK), ("lowers risk", lowers, SAFE)):
        fig.add_trace(
            go.Bar(
                y=shown,
                x=[counts[f] for f in shown],
                orientation="h",
                name=name,
                marker_color=colour,
                hovertemplate="%{y}: %{x:,} customers<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(height=max(300, 60 + 26 * len(shown)))
    return fig


def reason_waterfall(
    reasons: Sequence[Reason], base_margin: float | None = None, score: float | None = None
) -> go.Figure:
    """Return one customer's reasons as a waterfall of log-odds contributions.

    Contributions add up in log-odds (not in probability), so that is the axis; each bar
    is labelled ``feature = value`` when the value is known, so a reader sees the cause
    ("contract = month-to-month"), not just a column name.
    """
    title = "Reasons (log-odds)" + (f", score {score:.2f}" if score is not None else "")
    fig = figure(title, xaxis_title="contribution to the log-odds of churn")
    if not reasons:
        return empty(fig, "No reasons recorded")
    labels = [_reason_label(r) for r in reasons]
    contributions = [float(r["contribution"]) for r in reasons]
    measure = ["relative"] * len(reasons)
    if base_margin is not None:
        labels, contributions = ["base (average customer)", *labels], [base_margin, *contributions]
        measure = ["absolute", *measure]
    fig.add_trace(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=contributions,
            measure=measure,
            text=[f"{c:+.2f}" for c in contributions],
            increasing={"marker": {"color": RISK}},
            decreasing={"marker": {"color": SAFE}},
            totals={"marker": {"color": MUTED}},
            connector={"line": {"color": MUTED}},
            hovertemplate="%{y}: %{x:+.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(280, 80 + 34 * len(labels)), showlegend=False)
    return fig


def score_history(history: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Return a customer's score per scoring date with the threshold in force that day.

    The threshold is drawn as a step line: it changes when a new champion arrives, and a
    customer crossing it because the model changed is different from one whose risk rose.
    """
    fig = figure("Score history", xaxis_title="scoring date", yaxis_title="churn score")
    points = sorted(history, key=lambda h: str(h["scoring_date"]))
    if not points:
        return empty(fig)
    dates = [h["scoring_date"] for h in points]
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=[h["score"] for h in points],
            mode="lines+markers",
            name="score",
            line={"color": RISK},
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=[h.get("threshold") for h in points],
            mode="lines",
            name="threshold",
            line={"color": MUTED, "dash": "dash", "shape": "hv"},
            hovertemplate="threshold %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 1])
    return fig


def profit_curve(plan: CampaignPlan) -> go.Figure:
    """Return expected campaign profit by number of contacts, the plan and the limit marked."""
    fig = figure(
        "Expected campaign profit",
        xaxis_title="customers contacted (riskiest first)",
        yaxis_title="expected profit",
    )
    x = np.asarray(plan.curve_contacts)
    if len(x) < 2:
        return empty(fig, "No customers to plan for")
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.asarray(plan.curve_profit),
            mode="lines",
            name="expected profit",
            line={"color": SAFE},
            hovertemplate="%{x:,} contacts: %{y:,.0f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[plan.contacts],
            y=[plan.profit],
            mode="markers",
            name=f"plan: contact {plan.contacts:,}",
            marker={"color": RISK, "size": 12, "symbol": "diamond"},
            hovertemplate="plan: %{x:,} contacts, %{y:,.0f}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": MUTED, "width": 1})
    if plan.limit < x[-1]:
        fig.add_vline(
            x=plan.limit,
            line={"color": MUTED, "dash": "dash"},
            annotation_text=f"limit {plan.limit:,}",
        )
    return fig


def _reason_label(reason: Reason) -> str:
    value = reason.get("value")
    if value is None:
        return str(reason["feature"])
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{reason['feature']} = {shown}"
