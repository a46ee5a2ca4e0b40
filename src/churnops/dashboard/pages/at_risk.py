"""At risk: who to call for a scoring date, why, filtered, searched, paged and exported.

Filtering, sorting and paging run in SQL (:mod:`churnops.batch.risk`); the page only
holds the current page of rows.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from churnops import charts
from churnops.batch.report import score_text
from churnops.dashboard import reads
from churnops.dashboard.common import context, empty, money, pick_date, share

PAGE_SIZE = 50
ORDERS = {
    "risk": "Risk (highest first)",
    "value": "Customer value",
    "expected_loss": "Expected loss",
}

ctx = context()
st.title("Customers at risk")
day = pick_date(ctx)
everyone = reads.risk_overview(ctx.settings, ctx.store, day, (), "", False, "risk")
with st.sidebar:
    st.subheader("Filter")
    chosen = []
    for column, levels in everyone["segments"].items():
        level = st.selectbox(column, ["All", *levels], key=f"seg:{column}")
        if level != "All":
            chosen.append((column, str(level)))
    search = st.text_input("Customer id starts with", key="search").strip()
    above = st.toggle("Only above the threshold", value=True, key="above")
    orders = ["risk"] + (["value", "expected_loss"] if everyone["value_column"] else [])
    order = st.selectbox("Sort by", orders, format_func=ORDERS.get, key="order")
segments = tuple(chosen)
for warning in everyone.get("segment_warnings", []):
    st.warning(warning)

overview = reads.risk_overview(ctx.settings, ctx.store, day, segments, search, above, order)
kpis = st.columns(4)
kpis[0].metric("Customers scored", f"{overview['scored']:,}")
kpis[1].metric(
    "Above threshold",
    f"{overview['above_threshold']:,}",
    share(overview["above_threshold"], overview["scored"]),
    delta_color="off",
    delta_arrow="off",
)
kpis[2].metric("Expected churners", f"{overview['expected_churners']:,.0f}")
if overview["value_column"]:
    kpis[3].metric(
        f"Revenue at risk ({overview['value_column']})", money(overview["revenue_at_risk"])
    )
else:
    kpis[3].metric("Revenue at risk", "—", help="Set customer_value_column to see it.")
st.caption(
    f"Model {overview['model_name']} v{overview['model_version']}, threshold "
    f"{overview['threshold']:.3f}, scored {overview['scoring_date']}."
)

view = (day, segments, search, above, order)
if st.session_state.get("view") != view:  # a new filter starts at the first page
    st.session_state.update(view=view, page_no=1)
page_no = int(st.session_state.get("page_no", 1))
page = reads.risk_page(ctx.settings, ctx.store, *view, (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
total_pages = max(1, math.ceil(page["total"] / PAGE_SIZE))
if page_no > total_pages:
    page_no = st.session_state["page_no"] = 1
    page = reads.risk_page(ctx.settings, ctx.store, *view, 0, PAGE_SIZE)
if not page["rows"]:
    empty(
        "No customer matches these filters: widen them, or switch off 'Only above the threshold'."
    )
paging = st.columns([1, 5], vertical_alignment="bottom")
paging[0].number_input("Page", min_value=1, max_value=total_pages, key="page_no")
paging[1].caption(f"{page['total']:,} customers match; page {page_no} of {total_pages}.")

columns = list(everyone["segments"])
table = pd.DataFrame(
    {
        "rank": [r["risk_rank"] for r in page["rows"]],
        "customer": [r["customer_id"] for r in page["rows"]],
        "score": [score_text(r["score"]) for r in page["rows"]],
        **({"value": [r["value"] for r in page["rows"]]} if overview["value_column"] else {}),
        "top reasons": [r["reason_text"] or "—" for r in page["rows"]],
        **{c: [r["segments"].get(c) for r in page["rows"]] for c in columns},
    }
)
picked = st.dataframe(
    table,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="risk_table",
)
selected = picked.selection.rows if picked is not None else []
actions = st.columns([1, 1, 3])
if selected:
    customer = table["customer"].iloc[selected[0]]
    if actions[0].button(f"Open customer {customer}", type="primary"):
        st.session_state["customer_id"] = str(customer)
        st.switch_page("pages/customer.py")
actions[1].download_button(
    f"Download CSV ({page['total']:,} rows)",
    data=lambda: reads.risk_csv(ctx.settings, day, segments, search, above, order, columns),
    file_name=f"at-risk-{day.isoformat()}.csv",
    mime="text/csv",
    key="export",
    # No rerun: the export changes nothing on the page, and a rerun started by the
    # click races the browser's request for the file (once, in CI, a download that
    # never started).
    on_click="ignore",
)

st.plotly_chart(charts.top_reason_counts(page["rows"]), key="reasons_chart")
