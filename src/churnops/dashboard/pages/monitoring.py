"""Monitoring: drift, prediction drift and performance over time, triggers and pipelines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from churnops import charts
from churnops.dashboard import reads
from churnops.dashboard.common import context, empty

ctx = context()
st.title("Monitoring")
history = reads.monitoring_history(ctx.settings, ctx.store)
runs = history["runs"]
if not runs:
    empty("No monitoring runs yet: run `churnops monitor CURRENT.csv` (or `make run`).")

latest = runs[-1]
kpis = st.columns(4)
kpis[0].metric("Monitoring runs", len(runs))
kpis[1].metric("Latest drift share", f"{latest['drift_share']:.0%}")
kpis[2].metric("Latest prediction PSI", f"{latest['prediction_psi']:.3f}")
kpis[3].metric("Latest decision", "retrain" if latest["retrain"] else "keep")

left, right = st.columns(2)
left.plotly_chart(charts.drift_share_over_time(runs), key="drift_chart")
right.plotly_chart(charts.prediction_drift_over_time(runs), key="prediction_chart")
st.plotly_chart(charts.psi_heatmap(history["psi"]), key="psi_chart")
if latest.get("estimate_disagrees"):
    st.error(
        "The latest run's labels contradict its label-free estimate: the relation between "
        "features and churn has changed, so trust realised figures, not estimates. "
        + "; ".join(latest["reasons"])
    )
for warning in latest.get("warnings", []):
    st.warning(warning)
st.plotly_chart(
    charts.performance_over_time(history["performance"], latest.get("f1_floor")),
    key="performance_chart",
)

st.subheader("Trigger decisions")
st.dataframe(
    pd.DataFrame(
        {
            "run": [r["id"] for r in runs],
            "at": [r["at"] for r in runs],
            "model": [f"v{r['model_version']}" for r in runs],
            "data": [r["current"] for r in runs],
            "decision": ["retrain" if r["retrain"] else "keep" for r in runs],
            "reasons": ["; ".join(r["reasons"]) or "—" for r in runs],
        }
    ).iloc[::-1],
    hide_index=True,
    key="decisions_table",
)

st.subheader("Pipeline runs")
steps = reads.pipeline_steps(ctx.settings, ctx.store)
if steps:
    st.dataframe(
        pd.DataFrame(
            {
                "pipeline run": [s["pipeline_run"] for s in steps],
                "step": [s["step"] for s in steps],
                "status": [s["status"] for s in steps],
                "what happened": [
                    s["detail"].get("summary") or s["detail"].get("reason") or str(s["detail"])
                    for s in steps
                ],
            }
        ).iloc[::-1],
        hide_index=True,
        key="pipeline_table",
    )
else:
    st.caption("No `churnops pipeline run` yet.")
