"""deploy/k8s: the manifests are valid Kubernetes objects and agree with the code they run.

No cluster runs here, so the manifests are checked offline: every object against the
Kubernetes OpenAPI schemas shipped with ``kubernetes-validate`` (strict: an unknown or
misspelt field fails), for the oldest Kubernetes version we support and the newest the
validator knows; then against the code: probes ask routes the app serves and behave as
the probes need, every command parses as a real CLI invocation, every variable is a
setting (or its ``_FILE`` variant) or a named third-party one, every secret reference
names a key of the example Secret, selectors select, and the timings fit the drain.
"""

from __future__ import annotations

import copy
import itertools
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from churnops.cli import app as cli_app
from churnops.config import Settings, direct_env_names

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VERSIONS = ("1.30.0", "latest")  # 1.30: the oldest supported (CronJob timeZone is GA since 1.27)
# Variables read by libraries, not by churnops settings, each for a stated reason.
THIRD_PARTY_ENV = {
    "MLFLOW_TRACKING_USERNAME": "MLflow server basic auth",
    "MLFLOW_TRACKING_PASSWORD": "MLflow server basic auth",
    "AWS_ACCESS_KEY_ID": "boto3: S3 artifacts without an IAM role",
    "AWS_SECRET_ACCESS_KEY": "boto3: S3 artifacts without an IAM role",
    "NUMBA_CACHE_DIR": "numba: the kernel cache on a read-only root file system",
}
SECRET_SETTINGS = ("database_url", "tracking_uri", "redis_url", "model_signing_key")


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k deploy/k8s` creates (the listed files, its namespace)."""
    docs = [doc for name in kustomization["resources"] for doc in _load(K8S / name)]
    for doc in docs:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs


@pytest.fixture(scope="module")
def secret() -> dict[str, Any]:
    (doc,) = _load(K8S / "secret.example.yaml")
    return doc


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def _pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (owner, pod template spec) of every workload."""
    for o in objects:
        if o["kind"] == "Deployment":
            yield f"Deployment/{o['metadata']['name']}", o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            spec = o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            yield f"CronJob/{o['metadata']['name']}", spec


def _containers(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for owner, pod in _pod_specs(objects):
        for container in pod["containers"]:
            yield f"{owner}/{container['name']}", container, pod


def _config_data(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        data.update(_one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    return data


# -- schemas --------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection attempt: the schemas must come from the installed package."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access during validation: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.usefixtures("no_network")
def test_every_object_is_valid_against_the_kubernetes_schemas(
    objects: list[dict[str, Any]], secret: dict[str, Any], version: str
) -> None:
    """Strict schema validation, offline, of every object and of the example Secret."""
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    wanted = latest_version() if version == "latest" else version
    for doc in [*objects, secret]:
        try:
            kubernetes_validate.validate(doc, wanted, strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the point
            where = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({wanted}): {where}: {exc}")


@pytest.mark.usefixtures("no_network")
def test_the_validation_rejects_a_misspelt_field(objects: list[dict[str, Any]]) -> None:
    """The check above can fail: a typo in a probe (readinesProbe) is an error, not ignored."""
    import kubernetes_validate

    broken = copy.deepcopy(_one(objects, "Deployment", "churnops-api"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_kustomize_lists_every_manifest_and_renders(kustomization: dict[str, Any]) -> None:
    """No file forgotten (the example Secret stays out), and kustomize builds the set."""
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(rendered) == len(kustomization["resources"])
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {
        "churnops"
    }
    images = {
        c["image"]
        for d in rendered
        for c in (
            d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            + d.get("spec", {})
            .get("jobTemplate", {})
            .get("spec", {})
            .get("template", {})
            .get("spec", {})
            .get("containers", [])
        )
    }
    assert images == {"churnops:latest"}


# -- agreement with the code ----------------------------------------------------------------


def test_every_command_parses_as_a_cli_invocation(objects: list[dict[str, Any]]) -> None:
    """`churnops` + args of every container: real commands and options (parsed, not run)."""
    cli = typer.main.get_command(cli_app)
    seen = set()
    for where, container, _ in _containers(objects):
        assert container["command"] == ["churnops"], where
        argv = list(container["args"])
        group = cli.make_context("churnops", list(argv), resilient_parsing=True)
        sub = cli.get_command(group, argv[0])
        assert sub is not None, f"{where}: no churnops command {argv[0]!r}"
        rest = argv[1:]
        if isinstance(sub, click.Group):  # `pipeline run`
            group, sub = (
                sub.make_context(argv[0], list(rest), parent=group),
                sub.get_command(group, rest[0]),
            )
            assert sub is not None, f"{where}: no command {' '.join(argv[:2])!r}"
            rest = rest[1:]
        try:
            sub.make_context(sub.name or "", list(rest), parent=group)
        except click.UsageError as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{where}: churnops {' '.join(argv)}: {exc.format_message()}")
        seen.add(" ".join(a for a in argv[:2] if not a.startswith(("-", "/"))))
    assert seen == {"serve", "score", "monitor", "pipeline run"}


def test_probes_ask_routes_the_app_serves_and_behave_as_probes_need(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Readiness is /readyz, liveness and startup /healthz, on the port `serve` binds.

    And they mean what the probes need while no model is loaded yet: /healthz 200 (a
    loading pod is not restarted), /readyz 503 (nor sent traffic).
    """
    from fastapi.routing import iter_route_contexts
    from fastapi.testclient import TestClient

    from churnops.errors import ModelNotFoundError
    from churnops.serving import create_app

    def no_model(alias: str) -> Any:
        raise ModelNotFoundError("no champion yet")

    app = create_app(Settings(home=tmp_path, serve_audit=False), loader=no_model, no_auth=True)
    gets = {r.path_format for r in iter_route_contexts(app.routes) if "GET" in (r.methods or ())}
    deployment = _one(objects, "Deployment", "churnops-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    port = int(args[args.index("--port") + 1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")
    }
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startup": "/healthz",
        "readiness": "/readyz",
        "liveness": "/healthz",
    }
    for probe in probes.values():
        assert probe["path"] in gets
        assert ports[probe["port"]] == port
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503


def _setting_names() -> dict[str, str]:
    """Every variable that sets a churnops setting, mapped to the setting."""
    names = {}
    for name, field in Settings.model_fields.items():
        for variable in direct_env_names(name, field):
            names[variable] = name
        names[f"CHURNOPS_{name.upper()}_FILE"] = name
    return names


def test_every_variable_is_a_setting_or_a_named_third_party_one(
    objects: list[dict[str, Any]],
) -> None:
    """A typo (CHURNOPS_SERVE_DRAIN_SECOND) would be ignored silently by the settings."""
    settings = _setting_names()
    for where, container, _ in _containers(objects):
        names = [e["name"] for e in container.get("env", [])]
        names += list(_config_data(objects, container))
        assert len(names) == len(set(names)), f"{where}: a variable set twice"
        for variable in names:
            assert variable in settings or variable in THIRD_PARTY_ENV, (
                f"{where}: {variable} is neither a churnops setting nor a known library variable"
            )


def test_config_map_values_are_valid_settings(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's values pass the settings' own validation (types, ranges)."""
    data = _one(objects, "ConfigMap", "churnops-settings")["data"]
    for variable, value in data.items():
        assert isinstance(value, str), f"{variable}: ConfigMap values must be strings"
        monkeypatch.setenv(variable, value)
    settings = Settings()
    assert str(settings.home) == data["CHURNOPS_HOME"]
    assert settings.serve_drain_seconds == float(data["CHURNOPS_SERVE_DRAIN_SECONDS"])


def test_secrets_come_from_files_whose_keys_the_secret_has(
    objects: list[dict[str, Any]], secret: dict[str, Any]
) -> None:
    """Secret settings only as *_FILE in a mounted Secret; every reference names a key."""
    keys = set(secret["stringData"])
    for where, container, pod in _containers(objects):
        config = _config_data(objects, container)
        env = {e["name"]: e for e in container.get("env", [])}
        for name in SECRET_SETTINGS:
            for variable in direct_env_names(name, Settings.model_fields[name]):
                assert variable not in env, f"{where}: {variable} in plain text; use _FILE"
                assert variable not in config, f"{where}: {variable} in a ConfigMap"
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {
            m["mountPath"]: volumes[m["name"]]
            for m in container["volumeMounts"]
            if "secret" in volumes[m["name"]]
        }
        for variable, item in env.items():
            if variable.endswith("_FILE"):
                folder, _, key = item["value"].rpartition("/")
                assert folder in mounts, f"{where}: {variable} is not in a mounted Secret"
                assert mounts[folder]["secret"]["secretName"] == secret["metadata"]["name"]
                assert key in keys, f"{where}: {variable}: the Secret has no key {key!r}"
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == secret["metadata"]["name"], where
                assert ref["key"] in keys, f"{where}: {variable}: no key {ref['key']!r}"
        assert "CHURNOPS_DATABASE_URL_FILE" in env, f"{where}: no operational store"
        assert "CHURNOPS_TRACKING_URI_FILE" in env, f"{where}: no registry"
    for key, value in secret["stringData"].items():  # no real secret in the repository
        credential_free_url = "://" in value and "@" not in value
        assert "CHANGE-ME" in value or credential_free_url, f"{key}: placeholders only"


def test_selectors_select_the_api_pods_and_only_them(objects: list[dict[str, Any]]) -> None:
    """Service, PDB, spread constraint and Deployment agree; HPA scales that Deployment."""
    deployment = _one(objects, "Deployment", "churnops-api")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = [
        o["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] == "CronJob"
    ]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": _one(objects, "Service", "churnops-api")["spec"]["selector"],
        "PodDisruptionBudget": _one(objects, "PodDisruptionBudget", "churnops-api")["spec"][
            "selector"
        ]["matchLabels"],
    }
    for spread in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        selectors["topologySpread"] = spread["labelSelector"]["matchLabels"]
    for what, selector in selectors.items():
        assert selector, what
        assert selects(selector, pod_labels), f"{what} does not select the API pods"
        for labels in job_labels:
            assert not selects(selector, labels), f"{what} also selects batch pods"
    service = _one(objects, "Service", "churnops-api")
    named_ports = {
        p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= named_ports
    hpa = _one(objects, "HorizontalPodAutoscaler", "churnops-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert "replicas" not in deployment["spec"], "the HPA owns replicas"
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "cpu" in resources["requests"], "an HPA on CPU utilisation needs a CPU request"
    pdb = _one(objects, "PodDisruptionBudget", "churnops-api")
    # A node drain must be able to evict one pod at the HPA's smallest size.
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]


def test_shutdown_timings_fit_the_drain(objects: list[dict[str, Any]]) -> None:
    """The readiness probe sees the drain before the port closes; the grace period covers it."""
    from churnops.serving.audit import STOP_SECONDS
    from churnops.serving.serve import GRACEFUL_SHUTDOWN_SECONDS

    drain = float(
        _one(objects, "ConfigMap", "churnops-settings")["data"]["CHURNOPS_SERVE_DRAIN_SECONDS"]
    )
    pod = _one(objects, "Deployment", "churnops-api")["spec"]["template"]["spec"]
    readiness = pod["containers"][0]["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < drain
    needed = drain + GRACEFUL_SHUTDOWN_SECONDS + STOP_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_pods_run_locked_down_with_their_writable_paths_mounted(
    objects: list[dict[str, Any]],
) -> None:
    """Non-root, read-only root, no capabilities; home, /tmp and the numba cache writable;
    every absolute path an argument names is on a mount (inputs may be read-only)."""
    for where, container, pod in _containers(objects):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] == 1000, where
        assert pod["automountServiceAccountToken"] is False, where
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
        volumes = {v["name"]: v for v in pod["volumes"]}
        writable = [
            m["mountPath"]
            for m in container["volumeMounts"]
            if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")
        ]
        mounted = [m["mountPath"] for m in container["volumeMounts"]]

        def under(path: str, roots: list[str]) -> bool:
            return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

        config = _config_data(objects, container)
        for needed in (config["CHURNOPS_HOME"], "/tmp", config["NUMBA_CACHE_DIR"]):
            assert under(needed, writable), f"{where}: {needed} is not writable"
        args = container["args"]
        for flag, value in itertools.pairwise(args):
            if flag == "--report":
                assert under(value, writable), f"{where}: the report {value} is not writable"
        for value in args:
            if value.startswith("/"):
                assert under(value, mounted), f"{where}: {value} is on no mount"
        for volume in volumes.values():
            claim = volume.get("persistentVolumeClaim")
            if claim is not None:
                _one(objects, "PersistentVolumeClaim", claim["claimName"])
        _one(objects, "ServiceAccount", pod["serviceAccountName"])


def test_cron_jobs_never_overlap_and_have_valid_schedules(objects: list[dict[str, Any]]) -> None:
    field = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"
    cron = re.compile(rf"^{field}( {field}){{4}}$")
    jobs = [o for o in objects if o["kind"] == "CronJob"]
    assert {j["metadata"]["name"] for j in jobs} == {
        "churnops-score",
        "churnops-monitor",
        "churnops-pipeline",
    }
    for job in jobs:
        spec = job["spec"]
        name = job["metadata"]["name"]
        assert spec["concurrencyPolicy"] == "Forbid", name
        assert cron.match(spec["schedule"]), f"{name}: {spec['schedule']!r}"
        template = spec["jobTemplate"]["spec"]
        assert template["activeDeadlineSeconds"] > 0, name
        assert template["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure"), name
