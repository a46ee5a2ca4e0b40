"""Passwords out of every message: ``scheme://user:password@`` becomes ``scheme://user:***@``.

Why one helper applied at the exits rather than at each source: URLs with credentials reach
text from many places — SQLAlchemy, psycopg and MLflow errors quote the URL they were
given, our own "cannot reach …" messages name the tracking store, a training source can be
a database URL — and redacting at each source misses the next one. So every exit passes
its text through :func:`redact`: the error tree's messages (:class:`ChurnopsError`), the
CLI's output, the API's error answers, the JSON log formatter, MLflow tags and store rows.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# The password runs to the last "@" before a space or "/", so one containing "@" (legal
# unencoded in SQLAlchemy URLs) is masked whole; an empty user (redis://:pw@) counts too.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):[^\s/]*@")


def redact(text: str) -> str:
    """Return ``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(rf"\g<head>:{MASK}@", text)


def redact_data(value: Any) -> Any:
    """Return ``value`` with :func:`redact` applied to every string in it (dicts, lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_data(item) for item in value)
    return value
