"""The API's logs as Loki receives them: JSON lines with the documented fields.

A real ``churnops serve`` (two workers, as in the compose file) answers a few requests;
every line it writes on stderr must parse as a JSON object carrying the fields
docs/deployment.md ("Logs") promises, and the access line of a request sent with an
``X-Request-ID`` must carry that id. The Loki, Promtail and Grafana files are checked
statically (they cannot run here): they parse, point at the compose services, and the
fields Promtail extracts are documented ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from churnops.config import Settings
from churnops.serving.auth import create_key
from tests.conftest import free_port, wait_ready
from tests.factories import obvious_churner

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "deployment.md"
LEVELS = {"debug", "info", "warning", "error", "critical"}


def documented_fields() -> dict[str, set[str]]:
    """Return ``{"every line": {...}, "access lines": {...}}`` from the docs' field table."""
    text = DOCS.read_text().split("## Logs", 1)[1].split("\n## ", 1)[0]
    found: dict[str, set[str]] = {"every line": set(), "access lines": set(), "all": set()}
    for row in re.findall(r"^\| (`.+?`) \| (.+?) \|", text, flags=re.M):
        names = set(re.findall(r"`(\w+)`", row[0]))
        found["all"] |= names
        for scope in ("every line", "access lines"):
            if row[1].startswith(scope):
                found[scope] |= names
    return found


def test_the_docs_table_names_the_fields() -> None:
    """The parser reads the table (an empty set would make the checks below vacuous)."""
    fields = documented_fields()
    assert fields["every line"] == {"time", "level", "logger", "message"}
    assert {"request_id", "method", "path", "status", "latency_ms", "key"} <= fields["access lines"]


@pytest.fixture(scope="module")
def served_lines(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``churnops serve --workers 2``, send requests, stop it; return its stderr lines.

    Once per module: both tests read the same run (starting two workers costs seconds).
    """
    tmp_path = tmp_path_factory.mktemp("serve-logs")
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    key = create_key(Settings(home=trained_home, database_url=database), "loki", "scorer")["key"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))} | {
        "CHURNOPS_HOME": str(trained_home),
        "CHURNOPS_DATABASE_URL": database,
        "CHURNOPS_SERVE_DRAIN_SECONDS": "0",
    }
    port = free_port()
    stderr = tmp_path / "serve.err"
    argv = [sys.executable, "-m", "churnops", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "2"]
    with stderr.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    answers = {}
    try:
        wait_ready(
            url, timeout=90, died=lambda: None if proc.poll() is None else stderr.read_text()
        )
        # /readyz is per worker: wait until both have loaded the model (each logs it once).
        deadline = time.monotonic() + 90
        while stderr.read_text().count('"message":"model loaded"') < 2:  # bounded
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, timeout=30) as client:
            answers["traced"] = client.post(
                "/v1/predict",
                json=obvious_churner(),
                headers=auth | {"X-Request-ID": "loki-trace-1"},
            )
            answers["unsafe_id"] = client.post(
                "/v1/predict", json=obvious_churner(), headers=auth | {"X-Request-ID": "a b\tc"}
            )
            answers["no_key"] = client.post("/v1/predict", json=obvious_churner())
            answers["invalid"] = client.post("/v1/predict", json={"tenure": "x"}, headers=auth)
            answers["missing"] = client.get("/no-such-route")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            proc.kill()
            proc.wait(10)
    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    return {"lines": lines, "answers": answers}


@pytest.mark.integration
def test_every_stderr_line_is_json_with_the_documented_fields(
    served_lines: dict[str, Any],
) -> None:
    """Start-up, access, error and shutdown lines alike: one JSON object, fields present."""
    fields = documented_fields()
    lines = served_lines["lines"]
    assert len(lines) >= 10  # start-up of two workers, five requests, shutdown
    entries = []
    for line in lines:
        entry = json.loads(line)  # a line that is not JSON fails here, quoted
        assert isinstance(entry, dict), line
        missing = fields["every line"] - set(entry)
        assert not missing, f"{missing} missing from {line}"
        assert entry["level"] in LEVELS, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"]), line
        entries.append(entry)
    access = [e for e in entries if e["message"] == "request" and e["path"] != "/readyz"]
    assert len(access) == 5
    polls = [e for e in entries if e["message"] == "request" and e["path"] == "/readyz"]
    for entry in access + polls:
        missing = fields["access lines"] - set(entry)
        assert not missing, f"{missing} missing from access line {entry}"
        assert set(entry) <= fields["all"], f"undocumented access field in {entry}"
    statuses = sorted(e["status"] for e in access)
    answers = served_lines["answers"]
    assert statuses == sorted(a.status_code for a in answers.values())


@pytest.mark.integration
def test_the_access_line_carries_the_request_id(served_lines: dict[str, Any]) -> None:
    """The client's X-Request-ID is in its access line and response; an unsafe one is replaced."""
    entries = [json.loads(line) for line in served_lines["lines"]]
    answers = served_lines["answers"]
    assert answers["traced"].status_code == 200, answers["traced"].text
    assert answers["traced"].headers["x-request-id"] == "loki-trace-1"
    (traced,) = [e for e in entries if e.get("request_id") == "loki-trace-1"]
    assert (traced["message"], traced["path"], traced["status"], traced["key"]) == (
        "request",
        "/v1/predict",
        200,
        "loki",
    )
    replaced = answers["unsafe_id"].headers["x-request-id"]
    assert replaced != "a b\tc"
    assert [e["status"] for e in entries if e.get("request_id") == replaced] == [200]
    no_key = answers["no_key"].headers["x-request-id"]
    (refused,) = [e for e in entries if e.get("request_id") == no_key]
    assert (refused["status"], refused["key"]) == (401, None)


# ------------------------------------------------------------------- static: Loki & co.


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _mounted(compose: dict[str, Any], service: str, flag: str) -> Path:
    """Return the deploy/ file mounted where a service's ``-config.file`` flag points."""
    spec = compose["services"][service]
    path = next(a.split("=", 1)[1] for a in spec["command"] if a.startswith(flag))
    for volume in spec["volumes"]:
        source, target = volume.split(":")[:2]
        if target == path:
            return DEPLOY / source
    raise AssertionError(f"{service}: nothing mounted at {path}")


def test_loki_listens_where_promtail_and_grafana_send(compose: dict[str, Any]) -> None:
    """Loki's port is the one compose exposes, Promtail pushes to and Grafana queries."""
    loki = yaml.safe_load(_mounted(compose, "loki", "-config.file").read_text())
    port = loki["server"]["http_listen_port"]
    assert str(port) in compose["services"]["loki"]["expose"]
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert loki["schema_config"]["configs"][-1]["schema"] == "v13"  # structured metadata
    promtail = yaml.safe_load(_mounted(compose, "promtail", "-config.file").read_text())
    assert [c["url"] for c in promtail["clients"]] == [f"http://loki:{port}/loki/api/v1/push"]
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/loki.yml").read_text())[
        "datasources"
    ]
    assert [(d["type"], d["url"]) for d in datasource] == [("loki", f"http://loki:{port}")]
    assert "loki" in compose["services"]["grafana"]["depends_on"]


def test_promtail_reads_the_compose_containers_and_parses_the_api_lines(
    compose: dict[str, Any],
) -> None:
    """Docker discovery of this project, `service` from the compose label, JSON stages on the
    API's lines extracting documented fields only (request_id kept off the labels)."""
    spec = compose["services"]["promtail"]
    config = yaml.safe_load(_mounted(compose, "promtail", "-config.file").read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["docker_sd_configs"]
    socket = sd["host"].removeprefix("unix://")
    assert f"{socket}:{socket}:ro" in spec["volumes"]
    assert sd["filters"] == [
        {"name": "label", "values": [f"com.docker.compose.project={compose['name']}"]}
    ]
    service_label = next(r for r in job["relabel_configs"] if r["target_label"] == "service")
    assert service_label["source_labels"] == [
        "__meta_docker_container_label_com_docker_compose_service"
    ]
    (match,) = [s["match"] for s in job["pipeline_stages"] if "match" in s]
    (named,) = re.findall(r'service="([\w-]+)"', match["selector"])
    assert named in compose["services"]
    assert compose["services"][named]["command"][0] == "serve"
    stages = {next(iter(s)): next(iter(s.values())) for s in match["stages"]}
    extracted = set(stages["json"]["expressions"].values())
    assert extracted <= documented_fields()["all"]
    assert stages["timestamp"]["source"] == "time"
    assert "request_id" not in stages["labels"]  # one value per request: not an index label
    assert set(stages["structured_metadata"]) == {"request_id"}
