"""deploy/smoke.py: the compose stack run natively (``make stack-smoke``).

The translation from the compose world to this machine is unit-tested first (host names,
binds, paths, databases, health checks), because a wrong rewrite would make the smoke
prove something other than the compose file. Then the core of the smoke runs for real
against the local PostgreSQL: postgres, MinIO's stand-in, MLflow, the documented jobs and
the API (Dagster and Prometheus are left to ``make stack-smoke`` to keep this under a few
minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.smoke import (
    REPO,
    STATIC,
    VENV,
    Failed,
    Native,
    container_ports,
    duration,
    kind_of,
    load_compose,
)

from tests.conftest import POSTGRES_URL, require_service


@pytest.fixture
def native(tmp_path: Path) -> Native:
    return Native(load_compose(), tmp_path, "t1", ("127.0.0.1", 5432))


def _port(native: Native, service: str, port: int) -> int:
    return native.ports[(service, port)][1]


def test_urls_naming_services_point_at_the_native_processes(native: Native) -> None:
    """Service URLs move to loopback (databases get the run's suffix); others stay."""
    mlflow = _port(native, "mlflow", 5000)
    assert native.urls("http://mlflow:5000") == f"http://127.0.0.1:{mlflow}"
    assert native.urls("postgresql+psycopg://churnops:pw@postgres:5432/churnops") == (
        "postgresql+psycopg://churnops:pw@127.0.0.1:5432/churnops_smoke_t1"
    )
    assert native.urls("http://grafana:3000/d/x") == "http://grafana:3000/d/x"  # static
    assert native.urls("https://example.com:8443/mlflow:5000") == (
        "https://example.com:8443/mlflow:5000"
    )
    with pytest.raises(Failed, match="does not listen on 5001"):
        native.urls("http://mlflow:5001")


def test_the_mlflow_command_binds_loopback_and_keeps_its_allowed_hosts(native: Native) -> None:
    """0.0.0.0 -> 127.0.0.1, the port and store URL translated, --allowed-hosts untouched."""
    env = native.env("mlflow")
    argv = native.argv("mlflow", env)
    assert argv[0] == str(VENV / "bin" / "mlflow")
    assert "--host=127.0.0.1" in argv
    assert f"--port={_port(native, 'mlflow', 5000)}" in argv
    assert any(a.endswith("@127.0.0.1:5432/mlflow_smoke_t1") for a in argv)
    compose = load_compose()["services"]["mlflow"]["command"]
    allowed = next(a for a in compose if a.startswith("--allowed-hosts="))
    assert allowed in argv
    assert "mlflow:5000" in allowed.split("=", 1)[1].split(",")
    minio = _port(native, "minio", 9000)
    assert env["MLFLOW_S3_ENDPOINT_URL"] == f"http://127.0.0.1:{minio}"


def test_a_churnops_service_gets_the_image_env_paths_and_entrypoint(native: Native) -> None:
    """Dockerfile ENV/WORKDIR/ENTRYPOINT apply; /data is the shared data volume."""
    env = native.env("api")
    data = native.root / "volumes" / "data"
    assert env["CHURNOPS_HOME"] == str(data)
    assert env["CHURNOPS_PIPELINE_SOURCE"] == str(data / "customers.csv")
    assert env["PATH"].split(":")[0] == str(VENV / "bin")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert json.loads(env["CHURNOPS_SERVE_TRUSTED_HOSTS"]) == ["api", "localhost", "127.0.0.1"]
    assert native.workdir("api") == data
    argv = native.argv("api", env)
    assert argv[:2] == [str(VENV / "bin" / "churnops"), "serve"]
    api = _port(native, "api", 8000)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == str(api)


def test_health_checks_hit_the_service_s_own_native_port(native: Native) -> None:
    """127.0.0.1:8000 inside the api container is the api's native port here."""
    check = " ".join(native.loopback("api", a) for a in ["urlopen('http://127.0.0.1:8000/')"])
    assert f"127.0.0.1:{_port(native, 'api', 8000)}/" in check
    assert native.loopback("mlflow", "Host: mlflow:5000") == "Host: mlflow:5000"


def test_mounted_configs_are_copied_with_service_names_rewritten(native: Native) -> None:
    """Prometheus' scrape target becomes the api's address; its relative rule file is beside."""
    mounts = dict(native.mounts("prometheus"))
    config = mounts["/etc/prometheus/prometheus.yml"]
    targets = yaml.safe_load(config.read_text())["scrape_configs"][0]["static_configs"][0]
    assert targets["targets"] == [f"127.0.0.1:{_port(native, 'api', 8000)}"]
    assert (config.parent / "alerts.yml").read_text() == (
        REPO / "deploy" / "prometheus" / "alerts.yml"
    ).read_text()
    dagster = native.env("dagster-daemon")
    assert (Path(dagster["DAGSTER_HOME"]) / "dagster.yaml").is_file()


def test_init_sql_creates_the_run_s_databases(native: Native) -> None:
    """The image's init script runs with the compose database names mapped."""
    assert native.db_names == {"churnops": "churnops_smoke_t1", "mlflow": "mlflow_smoke_t1"}
    assert native.render_sql("CREATE DATABASE mlflow OWNER churnops;") == (
        "CREATE DATABASE mlflow_smoke_t1 OWNER churnops;"
    )


def test_a_port_the_compose_file_does_not_declare_is_an_error(native: Native) -> None:
    """A command listening on a port compose neither publishes nor exposes is reported."""
    with pytest.raises(Failed, match="neither publishes nor exposes"):
        native.binds("api", ["serve", "--port", "8001"])


def test_every_service_is_run_or_checked_statically() -> None:
    """Each compose service has a way to run here, and only Grafana, Loki, Promtail are static."""
    services = load_compose()["services"]
    static = sorted(name for name, spec in services.items() if kind_of(spec) == STATIC)
    assert static == ["grafana", "loki", "promtail"]
    assert container_ports(services["mlflow"]) == {5000: 5000}
    assert duration("1m30s", 0) == 90.0


@pytest.mark.integration
def test_the_core_of_the_stack_runs_natively() -> None:
    """postgres, minio, mlflow, demo-data, train, keys, api, score, monitor: every answer ok."""
    require_service(POSTGRES_URL, "PostgreSQL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    argv = [sys.executable, "-m", "deploy.smoke", "--json", "--postgres-admin-url", POSTGRES_URL]
    argv += ["--skip", "dagster-webserver", "--skip", "prometheus"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.stdout, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    steps = {s["step"]: s for s in report["steps"]}
    failed = {name: s["answer"] for name, s in steps.items() if s["ok"] is False}
    why = (failed, report["error"], done.stderr[-3000:])
    assert report["ok"], why
    assert done.returncode == 0, why
    expected = [
        "postgres", "minio", "minio-init", "mlflow", "mlflow host header", "demo-data",
        "train", "keys", "api", "api predict", "score", "monitor", "api logs",
    ]  # fmt: skip
    assert [s for s in steps if s in expected] == expected
    assert "Host: mlflow:5000 -> 200" in steps["mlflow host header"]["answer"]
    assert "-> 403" in steps["mlflow host header"]["answer"]
    assert steps["api predict"]["answer"].endswith("Host: rebind.example -> 400")
    # Clean-up: this run's databases are gone.
    import psycopg

    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"%_smoke_{report['run_id']}",),
        ).fetchall()
    assert left == []
