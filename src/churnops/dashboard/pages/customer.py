"""Customer: one customer's score over time, why, and how they differ from those who stay."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from churnops import charts
from churnops.batch.report import reason_text, score_text
from churnops.dashboard import reads
from churnops.dashboard.common import context, empty, value_text
from churnops.errors import ChurnopsError

ctx = context()
st.title("Customer")
asked = st.query_params.get("customer") or st.session_state.get("customer_id", "")
customer_id = st.text_input("Customer id", value=asked, key="customer_input").strip()
if not customer_id:
    empty("Enter a customer id, or open one from the At risk page.")
st.session_state["customer_id"] = customer_id
try:
    profile = reads.customer_profile(ctx.settings, ctx.store, customer_id)
except ChurnopsError as exc:
    empty(str(exc))

latest = profile["history"][0]
kpis = st.columns(4)
kpis[0].metric("Churn score", score_text(latest["score"]))
kpis[1].metric("Risk rank", f"{latest['risk_rank']:,}")
kpis[2].metric("Above threshold", "yes" if latest["high_risk"] else "no")
kpis[3].metric(
    "Scored on",
    str(latest["scoring_date"]),
    f"model v{latest['model_version']}",
    delta_color="off",
    delta_arrow="off",
)

left, right = st.columns(2)
left.subheader("Score across scoring dates")
left.plotly_chart(charts.score_history(profile["history"]), key="history_chart")
right.subheader("Why: each feature's push (log-odds)")
explanation = profile["explanation"]
if explanation is not None:
    right.plotly_chart(
        charts.reason_waterfall(
            explanation["contributions"], explanation["base_margin"], explanation["score"]
        ),
        key="waterfall_chart",
    )
else:
    right.plotly_chart(charts.reason_waterfall(latest["reasons"]), key="waterfall_chart")
    right.caption(f"Stored top reasons only: {profile['note']}.")
if latest["reasons"]:
    st.markdown("**Top reasons:** " + reason_text(latest["reasons"]))

st.subheader("This customer beside a typical customer who stayed")
try:
    typical = reads.typical_customer(ctx.settings, ctx.store, profile["model_version"])
except ChurnopsError as exc:
    typical = {}
    st.caption(f"No training snapshot to compare with: {exc}")
contributions = {c["feature"]: c for c in (explanation or {}).get("contributions", [])}
known = {r["feature"]: r.get("value") for r in latest["reasons"]} | (profile["record"] or {})
features = list(contributions) or [r["feature"] for r in latest["reasons"]]
st.dataframe(
    pd.DataFrame(
        {
            "feature": features,
            "this customer": [value_text(known[f]) if f in known else "—" for f in features],
            "typical non-churner": [
                value_text(typical[f]["typical"])
                + (f" ({typical[f]['share']:.0%})" if typical[f]["share"] is not None else "")
                if f in typical
                else "—"
                for f in features
            ],
            "push (log-odds)": [
                contributions[f]["contribution"] if f in contributions else None for f in features
            ],
        }
    ),
    hide_index=True,
    key="features_table",
)
