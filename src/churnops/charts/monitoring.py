"""Charts of the monitoring history: drift, the score distribution and performance per run.

Each takes the rows the monitoring store's read functions return (oldest first), so the
dashboard and the HTML report draw the same history from the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from churnops.charts.theme import BAND, GOOD, MUTED, RISK, SAFE, WARN, empty, figure

Row = Mapping[str, Any]


def drift_share_over_time(runs: Sequence[Row], alert: float | None = None) -> go.Figure:
    """Return the share of drifted features per monitoring run; runs that asked to retrain
    are marked, and ``alert`` (the share that triggers retraining) is drawn as a line."""
    fig = figure("Drifted features", xaxis_title="monitoring run", yaxis_title="share drifted")
    if not runs:
        return empty(fig)
    fig.add_trace(
        go.Scatter(
            x=[r["at"] for r in runs],
            y=[r["drift_share"] for r in runs],
            mode="lines+markers",
            name="drift share",
            line={"color": SAFE},
            marker={
                "color": [RISK if r.get("retrain") else SAFE for r in runs],
                "size": [11 if r.get("retrain") else 7 for r in runs],
            },
            text=[_run_label(r) for r in runs],
            hovertemplate="%{text}: %{y:.0%} drifted<extra></extra>",
        )
    )
    if alert is not None:
        fig.add_hline(
            y=alert, line={"color": RISK, "dash": "dash"}, annotation_text=f"alert {alert:.0%}"
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return fig


def psi_heatmap(
    cells: Sequence[Row], labels: Mapping[Any, str] | None = None, *, top: int = 20
) -> go.Figure:
    """Return PSI per feature (rows) and monitoring run (columns); drifted cells starred.

    Runs are columns in the order they first appear in ``cells`` (the store returns them
    oldest first); ``labels`` names them (default ``run <id>``). The ``top`` features by
    their largest PSI are shown, largest on top: what moves most is what to look at.
    """
    fig = figure("Feature PSI by run", xaxis_title="monitoring run")
    if not cells:
        return empty(fig)
    runs = list(dict.fromkeys(c["run_id"] for c in cells))
    worst: dict[str, float] = {}
    for c in cells:
        worst[c["feature"]] = max(worst.get(c["feature"], 0.0), c["psi"])
    features = sorted(worst, key=lambda f: (-worst[f], f))[:top]
    row, col = {f: i for i, f in enumerate(features)}, {r: j for j, r in enumerate(runs)}
    z: list[list[float | None]] = [[None] * len(runs) for _ in features]
    text = [[""] * len(runs) for _ in features]
    for c in cells:
        if c["feature"] not in row:
            continue
        i, j = row[c["feature"]], col[c["run_id"]]
        z[i][j] = c["psi"]
        text[i][j] = f"{c['psi']:.2f}" + ("*" if c.get("drifted") else "")
    names = [(labels or {}).get(r, f"run {r}") for r in runs]
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=names,
            y=features,
            text=text,
            texttemplate="%{text}",
            colorscale=[[0.0, "#ffffff"], [0.2, "#fff8c5"], [0.5, "#ffb4a8"], [1.0, RISK]],
            zmin=0.0,
            zmax=max(0.5, max(worst.values())),
            colorbar={"title": "PSI"},
            hovertemplate="%{y}, %{x}: PSI %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(300, 90 + 24 * len(features)))
    return fig


def prediction_drift_over_time(runs: Sequence[Row], alert: float | None = None) -> go.Figure:
    """Return the score distribution's PSI and the high-risk share per monitoring run.

    The two together tell a shifted population (PSI up) from a riskier one (share up).
    """
    fig = figure("Prediction drift", xaxis_title="monitoring run", yaxis_title="score PSI")
    if not runs:
        return empty(fig)
    x, text = [r["at"] for r in runs], [_run_label(r) for r in runs]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r["prediction_psi"] for r in runs],
            mode="lines+markers",
            name="score PSI",
            line={"color": SAFE},
            text=text,
            hovertemplate="%{text}: PSI %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r["high_risk_share"] for r in runs],
            mode="lines+markers",
            name="high-risk share",
            yaxis="y2",
            line={"color": WARN},
            text=text,
            hovertemplate="%{text}: %{y:.1%} high risk<extra></extra>",
        )
    )
    if alert is not None:
        fig.add_hline(
            y=alert, line={"color": RISK, "dash": "dash"}, annotation_text=f"alert {alert:g}"
        )
    fig.update_layout(
        yaxis={"rangemode": "tozero"},
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "title": "high-risk share",
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
    )
    return fig


def performance_over_time(points: Sequence[Row], floor: float | None) -> go.Figure:
    """Return estimated and realised F1 per monitoring run against the floor.

    The label-free estimate is drawn with its band (``lower``/``upper``, when a point has
    them), realised F1 where labels had arrived, the champion's holdout F1 when known,
    and the floor below which retraining is triggered.
    """
    fig = figure("F1 over time", xaxis_title="monitoring run", yaxis_title="F1")
    if not points:
        return empty(fig)
    banded = [p for p in points if p.get("lower") is not None and p.get("upper") is not None]
    if banded:
        fig.add_trace(
            go.Scatter(
                x=[p["at"] for p in banded] + [p["at"] for p in reversed(banded)],
                y=[p["upper"] for p in banded] + [p["lower"] for p in reversed(banded)],
                fill="toself",
                fillcolor=BAND,
                mode="lines",
                line={"width": 0},
                name="estimate's 95% band",
                hoverinfo="skip",
            )
        )
    text = [_run_label(p) for p in points]
    for name, key, style in (
        ("estimated (label-free)", "estimated_f1", {"color": SAFE}),
        ("realised", "realised_f1", {"color": GOOD}),
    ):
        fig.add_trace(
            go.Scatter(
                x=[p["at"] for p in points],
                y=[p.get(key) for p in points],
                mode="lines+markers",
                name=name,
                line=style,
                text=text,
                connectgaps=False,
                hovertemplate="%{text}: F1 %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    if any(p.get("baseline_f1") is not None for p in points):
        fig.add_trace(
            go.Scatter(
                x=[p["at"] for p in points],
                y=[p.get("baseline_f1") for p in points],
                mode="lines",
                name="champion holdout",
                line={"color": MUTED, "dash": "dot", "shape": "hv"},
                hovertemplate="holdout F1 %{y:.3f}<extra></extra>",
            )
        )
    if floor is not None:
        fig.add_hline(
            y=floor, line={"color": RISK, "dash": "dash"}, annotation_text=f"floor {floor:g}"
        )
    fig.update_yaxes(range=[0, 1])
    return fig


def _run_label(row: Row) -> str:
    run = row.get("id", row.get("run_id"))
    version = row.get("model_version")
    name = "this run" if run is None else f"run {run}"  # not stored yet (a report's own)
    return name + (f", model v{version}" if version is not None else "")
