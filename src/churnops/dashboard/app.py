"""The dashboard's entry script (``streamlit run``): sign-in, then the five pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from churnops.dashboard import access, reads

PAGES = Path(__file__).with_name("pages")


def main() -> None:
    """Set the page up, sign the visitor in and run the page they chose."""
    st.set_page_config(
        page_title="churnops — retention", page_icon=":material/trending_down:", layout="wide"
    )
    settings = reads.settings()
    principal = access.signed_in(settings)
    navigation = st.navigation(
        [
            st.Page(PAGES / "at_risk.py", title="At risk", icon=":material/warning:", default=True),
            st.Page(PAGES / "customer.py", title="Customer", icon=":material/person:"),
            st.Page(PAGES / "campaign.py", title="Campaign planner", icon=":material/call:"),
            st.Page(PAGES / "model.py", title="Model", icon=":material/model_training:"),
            st.Page(PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:"),
        ]
    )
    with st.sidebar:
        st.caption(f"Signed in as **{principal.name}** ({principal.role})")
        if principal is not access.NO_AUTH and st.button("Sign out"):
            access.sign_out()
            st.rerun()
    navigation.run()


main()
