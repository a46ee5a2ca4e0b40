"""Plotly figures shared by the dashboard and the static HTML reports.

Every function takes plain data (lists, dicts, numpy arrays, the store's read rows) and
returns a ``plotly.graph_objects.Figure`` in one template, so the dashboard
(``st.plotly_chart``) and an e-mailed report (:mod:`churnops.charts.html`) show the same
picture. Importing this package imports plotly: stages and commands that draw nothing
never import it.
"""

from churnops.charts.model import calibration, feature_importance
from churnops.charts.monitoring import (
    drift_share_over_time,
    performance_over_time,
    prediction_drift_over_time,
    psi_heatmap,
)
from churnops.charts.risk import (
    profit_curve,
    reason_waterfall,
    score_distribution,
    score_history,
    top_reason_counts,
)

__all__ = [
    "calibration",
    "drift_share_over_time",
    "feature_importance",
    "performance_over_time",
    "prediction_drift_over_time",
    "profit_curve",
    "psi_heatmap",
    "reason_waterfall",
    "score_distribution",
    "score_history",
    "top_reason_counts",
]
