"""Run the API under uvicorn (``churnops serve`` and the demo's last step), and drain it.

Shutdown on SIGTERM happens in three steps, so a load balancer loses no request:

1. ``/readyz`` answers 503 for ``serve_drain_seconds`` while the server keeps serving,
   so the balancer's probes see it leave and stop sending new requests;
2. uvicorn stops accepting connections and waits for the requests in flight (up to
   ``GRACEFUL_SHUTDOWN_SECONDS``);
3. the lifespan hands the buffered audit rows to the writer process.

SIGINT (Ctrl-C on a terminal) and a second SIGTERM skip step 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import threading
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


def drain_on_sigterm(start_draining: Callable[[], None], seconds: float) -> Callable[[], None]:
    """Put a readiness drain in front of the server's SIGTERM handler; return its undo.

    Installed from the app's lifespan, which runs in each worker process after uvicorn set
    its own handlers, so one mechanism serves ``--workers 1`` and ``--workers N`` alike
    (uvicorn's supervisor forwards SIGTERM to its workers). The first SIGTERM calls
    ``start_draining`` on the event loop and hands the signal to uvicorn ``seconds`` later;
    a second one is handed over at once. Only the main thread may set signal handlers:
    elsewhere (an app under TestClient, a server in a thread) this does nothing.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return lambda: None
    server_handler = signal.getsignal(signal.SIGTERM)
    if not callable(server_handler):  # no server handler to hand over to
        return lambda: None
    loop = asyncio.get_running_loop()
    draining = threading.Event()

    def begin() -> None:
        start_draining()
        log.info("SIGTERM: /readyz answers 503 for %gs, then the server stops", seconds)
        loop.call_later(seconds, server_handler, signal.SIGTERM, None)

    def on_sigterm(sig: int, frame: Any) -> None:
        if draining.is_set():
            server_handler(sig, frame)
            return
        draining.set()
        loop.call_soon_threadsafe(begin)  # the only loop call that is safe in a handler

    signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, server_handler)


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
    if (settings.serve_ssl_certfile is None) != (settings.serve_ssl_keyfile is None):
        raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile.")
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
