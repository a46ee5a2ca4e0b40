"""Integration: `churnops serve` in its own process drains on SIGTERM and loses no request.

The in-flight requests are real ones held open by their clients: headers sent, the body
only in part, so they are still running when the signal arrives and end only when the
test sends the rest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from churnops.serving.auth import create_key
from tests.conftest import free_port
from tests.factories import obvious_churner

pytestmark = pytest.mark.integration


def _open_request(port: int, key: str) -> tuple[socket.socket, bytes]:
    """Start POST /v1/predict: headers and half the body; return the socket and the rest."""
    body = orjson.dumps(obvious_churner())
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    half = len(body) // 2
    sock.sendall(head + body[:half])
    return sock, body[half:]


def _finish(sock: socket.socket, rest: bytes) -> tuple[int, dict[str, Any]]:
    """Send the rest of the body; return the response's status and JSON."""
    with sock:
        sock.sendall(rest)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(payload)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_sigterm_drains_readiness_then_finishes_requests_in_flight(
    serving_settings: Any, tmp_path: Path
) -> None:
    """SIGTERM: /readyz 503 while serving goes on, then the port closes, in-flight ends 200."""
    key = create_key(serving_settings, "drain-test", "scorer")["key"]
    port = free_port()
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(serving_settings.home),
        "CHURNOPS_TRACKING_URI": serving_settings.resolved_tracking_uri,
        "CHURNOPS_DATABASE_URL": serving_settings.resolved_database_url,
        "CHURNOPS_SERVE_PORT": str(port),
        "CHURNOPS_SERVE_DRAIN_SECONDS": "1.5",
        "CHURNOPS_SERVE_ACCESS_LOG": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from churnops.cli import main; main()", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # bounded: 60 s to load the model and bind
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        in_flight = [_open_request(port, key) for _ in range(3)]
        time.sleep(0.2)
        signal_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)

        statuses = []
        for _ in range(10):
            statuses.append(httpx.get(f"{url}/readyz", timeout=2).status_code)
            if statuses[-1] == 503:
                break
            time.sleep(0.05)
        assert statuses[-1] == 503, statuses
        assert httpx.get(f"{url}/readyz", timeout=2).json()["status"] == "draining"
        assert httpx.head(f"{url}/readyz", timeout=2).status_code == 503
        scored = httpx.post(
            f"{url}/v1/predict", json=obvious_churner(), headers={"X-API-Key": key}, timeout=5
        )
        assert scored.status_code == 200  # still serving while the balancer notices

        for _ in range(100):  # bounded: the drain lasts 1.5 s
            if not _accepts(port):
                break
            time.sleep(0.05)
        assert not _accepts(port), "still accepting after the drain"
        assert time.monotonic() - signal_at >= 1.4
        assert proc.poll() is None  # waiting for the requests in flight

        results = [_finish(sock, rest) for sock, rest in in_flight]
        assert [status for status, _ in results] == [200, 200, 200]
        assert all(0 <= body["probability"] <= 1 for _, body in results)
        proc.wait(timeout=30)
        assert "Traceback" not in (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
