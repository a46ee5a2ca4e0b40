"""Run the API under uvicorn (``churnops serve`` and the demo's last step).

A SIGTERM drains the server before it stops (see :mod:`churnops.serving.drain`).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from churnops.config import Settings
from churnops.errors import ConfigError
from churnops.scoring import Predictor

log = logging.getLogger("churnops.serving")
GRACEFUL_SHUTDOWN_SECONDS = 30


def load_for_serving(settings: Settings) -> tuple[Predictor, list[str]]:
    """Load the champion (or the last-known-good copy) before binding the port.

    Raises ModelNotFoundError with what to do when neither is available, so
    ``churnops serve`` fails fast with a clear message instead of a server that never
    becomes ready.
    """
    from churnops.serving.metrics import Metrics
    from churnops.serving.state import ModelState

    state = ModelState(settings, Metrics())
    predictor = state.load_initial()
    return predictor, state.warnings


def check_tls(settings: Settings) -> None:
    """Refuse half a TLS configuration, or files that do not make a certificate and its key.

    Checked before the model loads (seconds, on a big model), so a wrong Secret mount in a
    pod fails at once with a message instead of after the load, with a traceback from
    inside uvicorn.
    """
    import ssl

    certfile, keyfile = settings.serve_ssl_certfile, settings.serve_ssl_keyfile
    if certfile is None and keyfile is None:
        return
    if certfile is None or keyfile is None:
        given, missing = (
            ("--ssl-certfile", "--ssl-keyfile")
            if keyfile is None
            else ("--ssl-keyfile", "--ssl-certfile")
        )
        raise ConfigError(
            f"TLS needs both --ssl-certfile and --ssl-keyfile: {given} was given without "
            f"{missing} (or CHURNOPS_SERVE_SSL_CERTFILE / CHURNOPS_SERVE_SSL_KEYFILE)."
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            f"Cannot use the TLS certificate {certfile} with the key {keyfile}: {reason}.",
            {"certfile": str(certfile), "keyfile": str(keyfile)},
        ) from exc


def run_server(
    settings: Settings,
    *,
    as_json: bool = False,
    announce: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Load the model, then serve until SIGINT/SIGTERM (drained, in-flight requests complete)."""
    import uvicorn

    from churnops.serving.app import create_app
    from churnops.serving.logs import configure_logging

    configure_logging()
    check_tls(settings)
    predictor, warnings = load_for_serving(settings)
    for warning in warnings:
        log.warning(warning)
    if settings.serve_no_auth:
        log.warning(
            "INSECURE: --insecure-no-auth is set; anyone who can reach "
            f"{settings.serve_host}:{settings.serve_port} can score and reload models."
        )
    scheme = "https" if settings.serve_ssl_certfile else "http"
    info = {
        "url": f"{scheme}://{settings.serve_host}:{settings.serve_port}",
        "model": {"name": predictor.name, "version": predictor.version},
        "source": predictor.source,
        "workers": settings.serve_workers,
        "auth": not settings.serve_no_auth,
        "warnings": warnings,
    }
    if announce is not None:
        announce(info)
    else:
        log.info("serving", extra=info)
    options: dict[str, Any] = {
        "host": settings.serve_host,
        "port": settings.serve_port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "timeout_keep_alive": 5,
        "ssl_certfile": str(settings.serve_ssl_certfile) if settings.serve_ssl_certfile else None,
        "ssl_keyfile": str(settings.serve_ssl_keyfile) if settings.serve_ssl_keyfile else None,
    }
    if settings.serve_workers > 1:
        # Several processes: aggregate their metrics through prometheus' multiprocess dir.
        metrics_dir = settings.ensure_home() / "serving" / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run(
            "churnops.serving.app:app_from_env",
            factory=True,
            workers=settings.serve_workers,
            **options,
        )
        return
    uvicorn.run(create_app(settings, predictor=predictor), **options)
