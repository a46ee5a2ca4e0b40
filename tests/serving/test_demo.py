"""The demo's last step serves the API and the dashboard side by side, and stops both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from churnops.config import Settings
from churnops.serving.auth import principal_for
from tests.conftest import free_port, home_tracking_uri

pytestmark = pytest.mark.integration


def answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except OSError:
        return None


def test_serve_demo_prints_both_addresses_and_an_analyst_key(
    trained_home: Path, tmp_path: Path
) -> None:
    api_port, dash_port = free_port(), free_port()
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(trained_home),
        "CHURNOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "MLFLOW_TRACKING_URI": home_tracking_uri(trained_home),
        "CHURNOPS_SERVE_PORT": str(api_port),
        "CHURNOPS_DASHBOARD_PORT": str(dash_port),
        "PYTHONUNBUFFERED": "1",
    }
    code = (
        "from churnops.config import get_settings\n"
        "from churnops.serving.demo import serve_demo\n"
        "serve_demo(get_settings())\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C reaches it
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("chk_")):
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.strip())
        assert any("sign in with the demo analyst key" in x for x in lines), lines
        analyst_key = lines[-1]
        assert f"http://127.0.0.1:{api_port}" in " ".join(lines)
        assert f"http://127.0.0.1:{dash_port}" in " ".join(lines)
        settings = Settings(
            home=trained_home,
            database_url=env["CHURNOPS_DATABASE_URL"],
            tracking_uri=env["MLFLOW_TRACKING_URI"],
        )
        assert principal_for(settings, analyst_key).role == "analyst"  # type: ignore[union-attr]
        assert answers(f"http://127.0.0.1:{dash_port}/_stcore/health") == 200
        for _ in range(120):  # the API loads the model after the dashboard is up
            if answers(f"http://127.0.0.1:{api_port}/readyz") == 200:
                break
            time.sleep(0.5)
        assert answers(f"http://127.0.0.1:{api_port}/readyz") == 200
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the API stops, then the dashboard
        process.wait(timeout=60)
    assert answers(f"http://127.0.0.1:{dash_port}/_stcore/health") is None
    assert re.search(r"Demo API key \(admin", " ".join(lines))
