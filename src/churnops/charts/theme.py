"""One look for every chart: a small Plotly template, the colours, and the empty state.

The template is our own rather than ``plotly_white`` because each figure carries its
template into the HTML: a full built-in template adds kilobytes per chart to a report.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

RISK = "#cf222e"  # raises risk, above the threshold, alarms
SAFE = "#1f6feb"  # lowers risk
MUTED = "#8c959f"  # below the threshold, reference lines
GOOD = "#1a7f37"
WARN = "#9a6700"
BAND = "rgba(31, 111, 235, 0.15)"
COLORWAY = [SAFE, RISK, GOOD, WARN, "#8250df", "#0a7f87", MUTED]

TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13},
        "colorway": COLORWAY,
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 60, "r": 30, "t": 80, "b": 50},
        "title": {"x": 0.0, "xanchor": "left", "y": 0.97, "yanchor": "top"},
        "height": 360,
        "hovermode": "closest",
        "legend": {"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
        "xaxis": {"gridcolor": "#eaeef2", "zerolinecolor": "#d0d7de", "automargin": True},
        "yaxis": {"gridcolor": "#eaeef2", "zerolinecolor": "#d0d7de", "automargin": True},
    }
)


def figure(title: str, **layout: Any) -> go.Figure:
    """Return an empty figure in our template with ``title`` and any layout overrides."""
    return go.Figure(layout={"template": TEMPLATE, "title": {"text": title}, **layout})


def empty(fig: go.Figure, message: str = "No data yet") -> go.Figure:
    """Say so in the plot area instead of drawing blank axes."""
    fig.add_annotation(
        text=message,
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 15, "color": MUTED},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
