"""deploy/: the compose stack, Prometheus and Grafana files agree with the code they run.

Docker cannot pull images on these machines, so these checks read the files: every
command in the stack must parse as a real CLI invocation (churnops, MLflow, Dagster),
every environment variable must be a setting, every URL must name a service and a port it
declares, every dependency a condition the service can meet, every mounted file must
exist, and the scrape target must be the API service's port. ``make stack-smoke``
(tests/deploy/test_stack_smoke.py) runs the same file natively.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _parse(cli: Any, prog: str, argv: list[str]) -> Any:
    """Parse ``argv`` against ``cli`` down to the leaf command (subgroups included).

    Duck-typed: Typer ships its own copy of click, so its groups are not ``click.Group``.
    A usage error raises (click's or Typer's ``UsageError``, both with ``format_message``).
    """

    def is_group(command: Any) -> bool:
        return hasattr(command, "list_commands")

    ctx = cli.make_context(prog, list(argv), resilient_parsing=is_group(cli))
    command, rest = cli, list(argv)
    while is_group(command):
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{prog}: no command {name!r} in {' '.join(argv)}"
        ctx = sub.make_context(name, list(rest), parent=ctx, resilient_parsing=is_group(sub))
        command = sub
    return ctx


def test_every_churnops_command_parses_as_a_cli_invocation(compose: dict[str, Any]) -> None:
    """Every job's and the API's arguments are options the CLI really has (parsed, not run)."""
    cli = typer.main.get_command(app)
    commands = {
        name: s["command"] for name, s in _churnops_services(compose).items() if "command" in s
    }
    assert {"api", "demo-data", "train", "keys", "score", "monitor", "pipeline"} <= set(commands)
    for name, argv in commands.items():
        try:
            ctx = _parse(cli, "churnops", argv)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            pytest.fail(f"{name}: {' '.join(argv)}: {type(exc).__name__}: {message}")
        json_flags = [p.name for p in ctx.command.params if "--json" in getattr(p, "opts", ())]
        if name != "api":  # jobs: one JSON object on stdout, what the smoke and cron read
            assert json_flags, f"{name}: {argv[0]} has no --json"
            assert ctx.params[json_flags[0]], f"{name}: a job prints one JSON object (--json)"


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
    # MLflow 3 answers 403 to Host headers it does not list: the services send mlflow:5000.
    from mlflow.server.security_utils import is_allowed_host_header

    allowed = ctx.params["allowed_hosts"].split(",")
    assert is_allowed_host_header(allowed, f"mlflow:{ctx.params['port']}")
    assert is_allowed_host_header(allowed, "127.0.0.1:5000")  # the published port
    assert not is_allowed_host_header(allowed, "rebind.example:5000")
    assert ctx.params["artifacts_destination"].startswith("s3://")
    assert ctx.params["serve_artifacts"]  # clients need no S3 credentials
    assert set(service.get("environment", {})) >= {"MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"}


def test_the_dagster_commands_parse_against_dagster(compose: dict[str, Any]) -> None:
    """Webserver and daemon load the churnops definitions module with their real CLIs."""
    import importlib

    from dagster._daemon.cli import cli as daemon_cli
    from dagster_webserver.cli import cli as webserver_cli

    clis = {"dagster-webserver": webserver_cli, "dagster-daemon": daemon_cli}
    for name, cli in clis.items():
        service = compose["services"][name]
        assert service["entrypoint"] == [name]
        ctx = _parse(cli, name, service["command"])
        assert ctx.params["module_name"] == ("churnops.orchestration.definitions",)
        importlib.import_module(ctx.params["module_name"][0])
        assert service["environment"]["DAGSTER_HOME"] + "/dagster.yaml" in " ".join(
            service["volumes"]
        )
    web = compose["services"]["dagster-webserver"]
    port = _parse(webserver_cli, "dagster-webserver", web["command"]).params["port"]
    assert f":{port}/server_info'" in " ".join(web["healthcheck"]["test"])
    assert any(p.endswith(f":{port}") for p in web["ports"])


def test_dependencies_name_services_and_conditions_they_can_meet(compose: dict[str, Any]) -> None:
    """service_healthy needs a health check; service_completed_successfully a one-shot job."""
    from deploy.smoke import depends_on

    services = compose["services"]
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name}: {dep} has no health check"
            elif condition == "service_completed_successfully":
                assert "restart" not in services[dep], f"{name}: {dep} is not a one-shot job"
            else:
                assert condition == "service_started", f"{name}: {condition}"


def test_every_url_names_a_service_port_compose_declares(compose: dict[str, Any]) -> None:
    """A URL to ``service:port`` in any environment or command must hit a declared port."""
    import re

    from deploy.smoke import as_argv, container_ports, environment

    services = compose["services"]
    for name, service in services.items():
        texts = [*environment(service).values(), *as_argv(service.get("command"))]
        for text in texts:
            for host, port in re.findall(r"[a-z+]+://(?:[^@/\s]*@)?([\w.-]+):(\d+)", text):
                if host in services:
                    ports = container_ports(services[host])
                    assert int(port) in ports, f"{name}: {text} — {host} declares {ports}"


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
