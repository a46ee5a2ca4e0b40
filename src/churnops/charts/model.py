"""Charts of the model itself: is a score of 0.8 really 80 %, and what does it look at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from churnops.charts.theme import MUTED, SAFE, empty, figure


def calibration(
    prob_pred: Sequence[float],
    prob_true: Sequence[float],
    counts: Sequence[int] | None = None,
) -> go.Figure:
    """Return the reliability curve: mean score per bin against the churn rate observed.

    The campaign planner and the label-free performance estimate both read scores as
    probabilities; this is the evidence that they may. ``counts`` (customers per bin)
    are drawn as faint bars so a wild point in a nearly empty bin is not over-read.
    """
    fig = figure(
        "Calibration (holdout)",
        xaxis_title="mean predicted churn probability",
        yaxis_title="observed churn rate",
    )
    if len(prob_pred) == 0:
        return empty(fig)
    if counts is not None:
        fig.add_trace(
            go.Bar(
                x=list(prob_pred),
                y=list(counts),
                yaxis="y2",
                name="customers per bin",
                marker_color=MUTED,
                opacity=0.3,
                width=0.8 / len(prob_pred),
                hovertemplate="%{y:,} customers<extra></extra>",
            )
        )
        fig.update_layout(
            yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "title": "customers"}
        )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"color": MUTED, "dash": "dash"},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=list(prob_pred),
            y=list(prob_true),
            mode="lines+markers",
            name="model",
            line={"color": SAFE},
            hovertemplate="predicted %{x:.2f}, observed %{y:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig


def feature_importance(importance: Mapping[str, float], top: int = 15) -> go.Figure:
    """Return the ``top`` most important features as horizontal bars, the largest on top."""
    fig = figure("Feature importance", xaxis_title="mean |contribution| (log-odds)")
    ranked = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))[:top][::-1]
    if not ranked:
        return empty(fig)
    fig.add_trace(
        go.Bar(
            y=[name for name, _ in ranked],
            x=[value for _, value in ranked],
            orientation="h",
            marker_color=SAFE,
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(height=max(300, 60 + 26 * len(ranked)), showlegend=False)
    return fig
