"""deploy/: the compose stack, Prometheus and Grafana files agree with the code they run.

Docker cannot pull images on these machines, so the stack is not started here; instead
every churnops command in it must parse as a real CLI invocation, every environment
variable must be a setting, every mounted file must exist, and the scrape target must be
the API service's port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from churnops.cli import app
from churnops.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _churnops_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("churnops") and "entrypoint" not in service
    }


def test_every_churnops_command_parses_as_a_cli_invocation(compose: dict[str, Any]) -> None:
    """serve/train/score arguments are options the CLI really has (parsed, not run)."""
    cli = typer.main.get_command(app)
    commands = {
        name: s["command"] for name, s in _churnops_services(compose).items() if "command" in s
    }
    assert {"api", "train", "score"} <= set(commands)
    for name, argv in commands.items():
        group_ctx = cli.make_context("churnops", list(argv), resilient_parsing=True)
        sub = cli.get_command(group_ctx, argv[0])
        assert sub is not None, f"{name}: no churnops command {argv[0]!r}"
        try:
            sub.make_context(argv[0], list(argv[1:]), parent=group_ctx)
        except click.UsageError as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{name}: {' '.join(argv)}: {exc.format_message()}")


def test_the_mlflow_server_command_parses_against_mlflow(compose: dict[str, Any]) -> None:
    """The tracking server's options are ones the installed MLflow's CLI accepts."""
    from mlflow.cli import cli as mlflow_cli

    service = compose["services"]["mlflow"]
    assert service["entrypoint"] == ["mlflow"]
    argv = list(service["command"])
    group_ctx = mlflow_cli.make_context("mlflow", list(argv), resilient_parsing=True)
    server = mlflow_cli.get_command(group_ctx, argv[0])
    ctx = server.make_context(argv[0], argv[1:], parent=group_ctx)
    assert ctx.params["backend_store_uri"].endswith("@postgres:5432/mlflow")
    assert ctx.params["host"] == "0.0.0.0"


def test_the_api_healthcheck_asks_a_real_route(compose: dict[str, Any]) -> None:
    """The container healthcheck polls a path the app serves (readiness: a model loaded)."""
    from churnops.serving.routes.health import router

    check = " ".join(compose["services"]["api"]["healthcheck"]["test"])
    paths = {route.path for route in router.routes}
    used = [p for p in paths if f":8000{p}'" in check]
    assert used == ["/readyz"], check


def test_environment_variables_are_settings(compose: dict[str, Any]) -> None:
    """Every variable the stack sets is read by Settings (a typo would be silently ignored)."""
    aliases = {"MLFLOW_TRACKING_URI"}
    fields = {f"CHURNOPS_{name.upper()}" for name in Settings.model_fields}
    for name, service in _churnops_services(compose).items():
        for variable in service.get("environment", {}):
            assert variable in fields | aliases, f"{name}: {variable} is not a setting"


def test_mounted_files_exist_and_ports_stay_on_loopback(compose: dict[str, Any]) -> None:
    """Bind-mounted configs are in deploy/; published ports bind 127.0.0.1 only."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is public"


def test_prometheus_scrapes_the_api_service_port(compose: dict[str, Any]) -> None:
    """The scrape target is the api service at the port `churnops serve` listens on."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    command = compose["services"]["api"]["command"]
    port = command[command.index("--port") + 1]
    assert targets == [f"api:{port}"]
    assert f"EXPOSE {port}" in (DEPLOY / "Dockerfile").read_text()
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "churnops.yml").read_text()
    )
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts
