"""Campaign planner: whom to contact within a budget, and what it is expected to earn.

The arithmetic is :func:`churnops.campaign.plan_campaign`, the same profit formula that
chooses a model's threshold when training with ``threshold_strategy: profit``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from churnops import charts
from churnops.batch.report import score_text
from churnops.campaign import ProfitModel, plan_campaign
from churnops.dashboard import reads
from churnops.dashboard.common import context, money, pick_date

SHOWN = 200

ctx = context()
s = ctx.settings
st.title("Campaign planner")
day = pick_date(ctx)
scores, values, ids = reads.campaign_scores(s, ctx.store, day)
overview = reads.risk_overview(s, ctx.store, day, (), "", False, "risk")

inputs = st.columns(4)
limit_by = inputs[0].radio("Limit by", ["Budget", "Number of calls"], key="limit_by")
if limit_by == "Budget":
    budget = inputs[0].number_input(
        "Budget", min_value=0.0, value=float(s.offer_cost * 500), step=500.0, key="budget"
    )
    calls = None
else:
    calls = int(inputs[0].number_input("Calls", min_value=0, value=500, step=50, key="calls"))
    budget = None
offer_cost = inputs[1].number_input(
    "Offer cost per contact", min_value=0.0, value=float(s.offer_cost), key="offer_cost"
)
value_column = overview["value_column"]
use_column = False
if values is not None:
    use_column = (
        inputs[2].radio("Customer value", [f"Column {value_column}", "Constant"], key="value_mode")
        != "Constant"
    )
constant = inputs[2].number_input(
    "Value of a saved customer",
    min_value=0.0,
    value=float(s.customer_value),
    disabled=use_column,
    key="constant_value",
)
acceptance = inputs[3].slider(
    "Expected acceptance", 0.0, 1.0, float(s.acceptance_rate), 0.01, key="acceptance"
)

economics = ProfitModel(offer_cost=offer_cost, acceptance_rate=acceptance, customer_value=constant)
plan = plan_campaign(
    scores, values if use_column else None, economics, budget=budget, max_calls=calls
)
kpis = st.columns(4)
kpis[0].metric(
    "Customers to contact",
    f"{plan.contacts:,}",
    f"of {plan.limit:,} allowed",
    delta_color="off",
    delta_arrow="off",
)
kpis[1].metric("Expected cost", money(plan.cost))
kpis[2].metric("Expected saved revenue", money(plan.saved_revenue))
kpis[3].metric("Expected profit", money(plan.profit))
if plan.contacts == 0:
    st.warning("No contact is expected to pay for its offer at these settings.")
elif plan.threshold is not None:
    st.caption(
        f"Contact every customer scoring {score_text(plan.threshold)} or more "
        "(the profit-optimal cut)."
    )
st.plotly_chart(charts.profit_curve(plan), key="profit_chart")

n = plan.contacts
chosen = pd.DataFrame(
    {
        "rank": range(1, n + 1),
        "customer": ids[:n],
        "score": scores[:n],
        "value": values[:n] if use_column else constant,
        "expected saving": scores[:n] * acceptance * (values[:n] if use_column else constant),
    }
)
st.subheader(f"Who to contact ({n:,})")
st.dataframe(  # scores as score_text shows them; the CSV keeps the numbers
    chosen.head(SHOWN).assign(score=lambda shown: shown["score"].map(score_text)),
    hide_index=True,
    key="contacts_table",
)
if n > SHOWN:
    st.caption(f"The first {SHOWN} shown; the CSV holds all {n:,}.")
st.download_button(
    f"Download the contact list ({n:,} rows)",
    data=lambda: chosen.to_csv(index=False),
    file_name=f"campaign-{day.isoformat()}.csv",
    mime="text/csv",
    key="campaign_export",
    on_click="ignore",  # no rerun: see the risk page's export
)
