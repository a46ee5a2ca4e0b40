"""The server's structured logs: JSON lines on stderr, each carrying the request id when there
is one (the formatter is :mod:`churnops.logs`, shared with the audit writer process)."""

from __future__ import annotations

import logging
import sys

from churnops.logs import JsonFormatter, request_id_var

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]


def configure_logging(level: str = "INFO") -> None:
    """Send churnops and uvicorn logs to stderr as JSON lines (the server's processes only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("churnops", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # we log each request ourselves
