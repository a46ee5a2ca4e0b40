"""Shared fixtures: isolated settings per test, small data, one trained registry per session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from churnops.config import Settings, get_settings
from tests.factories import make_customers

POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CHURNOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep every test's state in its own folder and off any real MLflow server."""
    for key in list(os.environ):
        if key.startswith("CHURNOPS_") or key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private home and a small tuning budget."""
    return Settings(home=tmp_path / "home", trials=2, cv_folds=3)


@pytest.fixture(scope="session")
def customers() -> pd.DataFrame:
    """A 600-row Telco-like table with a known signal."""
    return make_customers(600, seed=1)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one trained and registered model (v1 = champion), shared by a session."""
    from churnops.stages import train_and_register

    home = tmp_path_factory.mktemp("trained") / "home"
    # Explicit tracking URI: session fixtures run before the per-test env cleanup, and
    # mlflow.set_tracking_uri() in an earlier test leaves MLFLOW_TRACKING_URI set.
    settings = Settings(home=home, trials=2, cv_folds=3, tracking_uri=home_tracking_uri(home))
    train_and_register(
        make_customers(800, seed=2), settings, target="churn", id_column="customer_id"
    )
    return home


def home_tracking_uri(home: Path) -> str:
    """Return the embedded tracking URI of ``home`` (what Settings defaults to)."""
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


def wait_ready(
    url: str, timeout: float = 30.0, died: Callable[[], str | None] = lambda: None
) -> None:
    """Return once ``{url}/readyz`` answers 200; raise saying why not (``died`` or time)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded: stops by itself
        why = died()
        if why:
            raise RuntimeError(why)
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/readyz was not 200 within {timeout:.0f} s")


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread on loopback; yield its URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=15)
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def free_port() -> int:
    """Return a loopback port nobody listens on (closed again: for a server to bind next)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_service(url: str, name: str) -> None:
    """Skip (locally) or fail (in CI) when a PostgreSQL or Redis server is not reachable."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=1).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} at {parsed.hostname}:{parsed.port} must run in CI")
        pytest.skip(f"{name} is not reachable at {parsed.hostname}:{parsed.port}")
