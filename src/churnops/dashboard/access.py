"""Who may see the dashboard: a sign-in with an API key of role ``analyst`` or ``admin``.

Keys are checked against the same hashed key store as the API
(:func:`churnops.serving.auth.principal_for`). The key stays in the server-side session
only and is checked again every ``serve_key_cache_seconds``, so a revoked key is signed
out as soon as the API would refuse it. ``--insecure-no-auth`` signs everyone in as a
read-only analyst, and only while the server listens on loopback.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from churnops.config import Settings
from churnops.dashboard.launch import NO_AUTH_ENV, is_loopback
from churnops.serving.auth import Principal, principal_for

READ_ROLE = "analyst"
NO_AUTH = Principal("anonymous (no auth)", READ_ROLE)


def signed_in(settings: Settings) -> Principal:
    """Return who is signed in; otherwise show the sign-in form and stop the page."""
    if os.environ.get(NO_AUTH_ENV) == "1":
        return _no_auth()
    principal: Principal | None = st.session_state.get("principal")
    if principal is not None:
        checked_at = st.session_state.get("checked_at", 0.0)
        if time.monotonic() - checked_at <= settings.serve_key_cache_seconds:
            return principal
        again = principal_for(settings, st.session_state.get("key", ""))
        if again is not None and again.allows(READ_ROLE):
            st.session_state["principal"] = again
            st.session_state["checked_at"] = time.monotonic()
            return again
        sign_out()
        st.warning("Your key was revoked or changed role: sign in again.")
    _sign_in_form(settings)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def sign_out() -> None:
    """Forget the session's key."""
    for name in ("principal", "key", "checked_at"):
        st.session_state.pop(name, None)


def _no_auth() -> Principal:
    address = st.get_option("server.address")
    if not is_loopback(address):
        st.error(
            f"Refusing to run without authentication on {address or 'every address'}: "
            "--insecure-no-auth is only allowed on loopback (127.0.0.1)."
        )
        st.stop()
    return NO_AUTH


def _sign_in_form(settings: Settings) -> None:
    st.title("churnops — retention dashboard")
    with st.form("sign-in"):
        key = st.text_input(
            "API key",
            type="password",
            help="An analyst or admin key: `churnops keys create --name NAME --role analyst`.",
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        st.caption("Sign in with an API key of role analyst (read-only) or admin.")
        return
    found = principal_for(settings, key)
    if found is None:
        st.error("Unknown or revoked API key.")
    elif not found.allows(READ_ROLE):
        st.error(
            f"Key {found.name!r} has role {found.role!r}; the dashboard needs an analyst "
            "or admin key."
        )
    else:
        st.session_state.update(principal=found, key=key.strip(), checked_at=time.monotonic())
        st.rerun()
