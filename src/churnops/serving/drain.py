"""Drain on SIGTERM, so a load balancer loses no request.

Shutdown happens in three steps:

1. ``/readyz`` answers 503 for ``serve_drain_seconds`` while the server keeps serving,
   so the balancer's probes see it leave and stop sending new requests;
2. uvicorn stops accepting connections and waits for the requests in flight (up to
   ``GRACEFUL_SHUTDOWN_SECONDS`` in :mod:`churnops.serving.serve`);
3. the lifespan hands the buffered audit rows to the writer process.

SIGINT (Ctrl-C on a terminal) and a second SIGTERM skip step 1. Its own module because the
app installs it (from its lifespan) and the server runner starts the app: neither imports
the other for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("churnops.serving")


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
