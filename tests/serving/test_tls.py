"""Integration: `churnops serve --ssl-certfile/--ssl-keyfile` speaks HTTPS, and only HTTPS.

A private CA and a server certificate for 127.0.0.1/localhost are generated with trustme;
`churnops serve` runs in its own process, as in production. A client that trusts the CA
gets readiness and an authenticated prediction; plain HTTP to the port and a client that
does not trust the CA both fail; half a TLS configuration, or a certificate that does not
match its key, is refused with a message before the model loads.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from churnops.config import Settings
from churnops.serving.auth import create_key
from tests.conftest import free_port
from tests.factories import obvious_churner

pytestmark = pytest.mark.integration
SERVE = [sys.executable, "-c", "from churnops.cli import main; main()", "serve"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The server's certificate chain and key, and the CA a client must trust, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "cert": folder / "server.pem",
        "key": folder / "server.key",
        "ca": folder / "ca.pem",
        "other_key": folder / "other.key",
    }
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(files["cert"]), append=True)
    cert.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(files["other_key"]))
    return files


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(settings.home),
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri,
        "CHURNOPS_DATABASE_URL": settings.resolved_database_url,
        "CHURNOPS_SERVE_ACCESS_LOG": "false",
        **extra,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def tls_server(
    trained_home: Path, tls_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`churnops serve` over TLS on a free loopback port, with a scorer key."""
    from tests.conftest import home_tracking_uri

    folder = tmp_path_factory.mktemp("tls-server")
    settings = Settings(
        home=trained_home,
        tracking_uri=home_tracking_uri(trained_home),
        database_url=f"sqlite:///{folder / 'ops.db'}",
    )
    key = create_key(settings, "tls-test", "scorer")["key"]
    port = free_port()
    log_path = folder / "serve.log"
    log = log_path.open("wb")
    argv = [
        *SERVE,
        "--port",
        str(port),
        "--ssl-certfile",
        str(tls_files["cert"]),
        "--ssl-keyfile",
        str(tls_files["key"]),
    ]
    proc = subprocess.Popen(
        argv, env=_env(settings), stdout=log, stderr=subprocess.STDOUT, cwd=folder
    )
    url = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(tls_files["ca"]))
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded by the deadline: load the model and bind
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/readyz", verify=trusted, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield {"url": url, "port": port, "key": key, "trusted": trusted, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_https_readiness_and_an_authenticated_prediction(tls_server: dict[str, Any]) -> None:
    """With the CA trusted: /readyz and /v1/predict answer over TLS, the key still checked."""
    with httpx.Client(base_url=tls_server["url"], verify=tls_server["trusted"], timeout=10) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        scored = c.post(
            "/v1/predict", json=obvious_churner(), headers={"X-API-Key": tls_server["key"]}
        )
        assert scored.status_code == 200, scored.text
        assert 0.5 < scored.json()["probability"] <= 1
        assert c.post("/v1/predict", json=obvious_churner()).status_code == 401
        stream = c.stream("GET", "/healthz")
        with stream as response:
            tls = response.extensions["network_stream"].get_extra_info("ssl_object")
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: dict[str, Any]) -> None:
    """Nothing is served in clear text on the TLS port (no accidental downgrade)."""
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server['port']}/readyz", timeout=5)


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(
    tls_server: dict[str, Any],
) -> None:
    """The system trust store does not know the private CA: verification fails."""
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server['url']}/readyz", timeout=5)


def test_the_certificate_is_checked_against_the_host_name(
    tls_server: dict[str, Any], ca: trustme.CA
) -> None:
    """Trusting the CA is not enough: the certificate must name the host asked for."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    address = ("127.0.0.1", tls_server["port"])
    with (
        socket.create_connection(address, timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        context.wrap_socket(sock, server_hostname="api.example.com")
    with (
        socket.create_connection(address, timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("given", ["--ssl-certfile", "--ssl-keyfile"])
def test_one_tls_flag_alone_is_a_clear_error(
    given: str, tls_files: dict[str, Path], tmp_path: Path
) -> None:
    """Exit 2 naming the missing flag, no traceback, before any model is looked for."""
    path = tls_files["cert"] if given == "--ssl-certfile" else tls_files["key"]
    settings = Settings(home=tmp_path / "empty-home")  # no model: a load would fail with 3
    done = subprocess.run(
        [*SERVE, "--port", str(free_port()), given, str(path)],
        env=_env(settings),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    missing = "--ssl-keyfile" if given == "--ssl-certfile" else "--ssl-certfile"
    assert f"{given} was given without {missing}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("problem", ["mismatched key", "missing key file"])
def test_unusable_tls_files_fail_before_the_model_loads(
    problem: str, tls_files: dict[str, Path], tmp_path: Path
) -> None:
    """A key that is not the certificate's, or no file at all: exit 2 with both paths named."""
    key = tls_files["other_key"] if problem == "mismatched key" else tmp_path / "absent.key"
    settings = Settings(home=tmp_path / "empty-home")
    done = subprocess.run(
        [
            *SERVE,
            "--port",
            str(free_port()),
            "--ssl-certfile",
            str(tls_files["cert"]),
            "--ssl-keyfile",
            str(key),
        ],
        env=_env(settings),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Cannot use the TLS certificate" in done.stderr
    assert str(key) in done.stderr.replace("\n", "")
    assert "Traceback" not in done.stdout + done.stderr
