"""JSON log lines, one object per line: the format of everything on the server's stderr.

The scoring server (:mod:`churnops.serving.logs`) and its audit writer process
(:mod:`churnops.store.audit_writer`) share a stderr, so they share this formatter. It is a
module of its own, importing only the standard library, orjson and :mod:`churnops.redact`:
the writer must not import the serving package (FastAPI and the scoring path, seconds and
~180 MB in a process that only inserts rows).
"""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime

import orjson

from churnops.redact import redact

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "churnops_request_id", default=None
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, request id, extras.

    The request id is the one being served, when there is one (the server's middleware sets
    :data:`request_id_var`); extras are what the call passed as ``extra=``. The finished
    line is redacted (URL passwords masked): messages, extras and tracebacks quote URLs
    from drivers and MLflow, and log lines travel further than the server.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(payload, default=str).decode())
