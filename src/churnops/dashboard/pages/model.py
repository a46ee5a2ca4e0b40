"""Model: champion and challenger side by side, the registry's history, admin actions.

Promote and roll back are offered to admin keys only, through the registry's own stage
functions: the same gate, lock and records as ``churnops promote`` / ``rollback``, with
the signed-in key's name recorded as who acted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from churnops import charts
from churnops.dashboard import reads
from churnops.dashboard.common import context, empty
from churnops.errors import ChurnopsError

ctx = context()
st.title("Model")
overview = reads.model_overview(ctx.settings, ctx.store)
if overview.get("champion") is None:
    empty("No model yet: run `churnops train DATA.csv --target COLUMN` (or `make run`).")


def show(column: Any, title: str, version: dict[str, Any] | None) -> None:
    """One version's card: family, metrics, threshold, top features, calibration, run link."""
    column.subheader(title)
    if version is None:
        column.info("No challenger: the next `churnops train` registers one.")
        return
    column.markdown(
        f"**v{version['version']}** · {version.get('family') or '?'} · threshold "
        f"{version['threshold']:.3f} · registered {version.get('created_at') or '?'}"
    )
    metrics = {
        name: {
            "holdout": version.get("holdout", {}).get(name),
            "cv": version.get("cv", {}).get(name),
        }
        for name in sorted(set(version.get("holdout", {})) | set(version.get("cv", {})))
    }
    column.dataframe(pd.DataFrame(metrics).T, key=f"metrics_{title}")
    if version.get("run_url"):
        column.link_button("Open the MLflow run", version["run_url"])
    else:
        column.caption(f"MLflow run {version['run_id']}")
    importance = version.get("importance") or {}
    if importance:
        column.plotly_chart(charts.feature_importance(importance), key=f"importance_{title}")
    calibration = version.get("calibration")
    if calibration:
        column.plotly_chart(
            charts.calibration(
                calibration["prob_pred"], calibration["prob_true"], calibration.get("counts")
            ),
            key=f"calibration_{title}",
        )


left, right = st.columns(2)
show(left, "Champion", overview["champion"])
show(right, "Challenger", overview.get("challenger"))

st.subheader("Registry history")
events = reads.registry_events(ctx.settings, ctx.store)
if events:
    st.dataframe(pd.DataFrame(events), hide_index=True, key="events_table")
else:
    st.caption("No promotions, kept decisions or rollbacks recorded yet.")

if ctx.principal.allows("admin"):
    st.subheader("Change the champion (admin)")
    actor = f"dashboard:{ctx.principal.name}"
    act = st.columns(2)
    if overview.get("challenger") and act[0].button(
        "Promote the challenger (gated)", key="promote"
    ):
        from churnops.registry import promote

        try:
            result = promote(ctx.settings, actor=actor)
            st.success(f"{result.decision}: {result.reason}")
        except ChurnopsError as exc:
            st.error(str(exc))
        reads.forget()
    if act[1].button("Roll back to the previous champion", key="rollback"):
        from churnops.registry import rollback

        try:
            result = rollback(ctx.settings, actor=actor)
            st.success(f"Champion v{result.from_version} → v{result.to_version}: {result.reason}")
        except ChurnopsError as exc:
            st.error(str(exc))
        reads.forget()
