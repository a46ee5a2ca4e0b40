"""Start the dashboard's Streamlit server with our settings, bound to loopback by default.

The CLI (``churnops dashboard``) and the demo start the same command line. Settings that
the caller resolved (home, store, tracking URI, model name) go to the server process as
``CHURNOPS_*`` variables, so the app reads the very store the caller means.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from churnops.config import Settings
from churnops.errors import ConfigError

APP = Path(__file__).with_name("app.py")
NO_AUTH_ENV = "CHURNOPS_DASHBOARD_NO_AUTH"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str | None) -> bool:
    """Return True for an address only this machine can reach."""
    return (host or "") in LOOPBACK or (host or "").startswith("127.")


def command(host: str, port: int) -> list[str]:
    """Return the ``streamlit run`` command line for the app (no telemetry, no file watcher)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
    ]


def environment(settings: Settings, no_auth: bool) -> dict[str, str]:
    """Return the server's environment: ours plus the settings the caller resolved."""
    env = dict(os.environ)
    env["CHURNOPS_HOME"] = str(Path(settings.home).resolve())
    env["CHURNOPS_DATABASE_URL"] = settings.resolved_database_url
    env["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    env["CHURNOPS_MODEL_NAME"] = settings.model_name
    env.pop(NO_AUTH_ENV, None)
    if no_auth:
        env[NO_AUTH_ENV] = "1"
    return env


def check_bind(host: str, no_auth: bool) -> None:
    """Refuse ``--insecure-no-auth`` anywhere but loopback."""
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--insecure-no-auth is only allowed on a loopback address, not {host!r}: "
            "create a key with `churnops keys create --name NAME --role analyst` instead."
        )


def start(settings: Settings, host: str, port: int, no_auth: bool = False) -> subprocess.Popen:
    """Start the server in the background and return its process."""
    check_bind(host, no_auth)
    return subprocess.Popen(command(host, port), env=environment(settings, no_auth))


def wait_ready(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> bool:
    """Poll Streamlit's health route until it answers (False on timeout or a dead process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False
