"""Text every store can hold, for values churnops writes but did not choose.

PostgreSQL refuses NUL characters in text, and no driver can encode a lone surrogate as
UTF-8: one such value inside a multi-row write fails the whole transaction. Text that
only describes something (an error message, a rejection reason) is made storable here
instead of risking the write; values that are evidence (audit rows) are never altered —
they are quarantined whole (see :mod:`churnops.store.audit_writer`).
"""

from __future__ import annotations


def storable(text: str, limit: int | None = None) -> str:
    """Return ``text`` with NUL and lone surrogates escaped, cut to ``limit`` characters."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if limit is not None and len(safe) > limit:
        return safe[: limit - 1] + "…"
    return safe
