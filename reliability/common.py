"""What every check shares: a trained home, keys, real servers on free ports, result rows.

The suite trains once per run (tiny budgets) and hands each check the same home, so the
figures measure serving, batch and registry behaviour, not training time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CHURNOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PYTHON = sys.executable
CHURNOPS = str(Path(sys.executable).with_name("churnops"))


@dataclasses.dataclass
class Result:
    """One row of the figures table: what was measured, against which target."""

    check: str
    figure: str
    target: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much each check does; `short` is what CI runs (same checks, smaller numbers)."""

    name: str
    schemathesis_cases: int
    fuzz_runs: int
    reloads: int
    reload_rps: float
    shutdown_rounds: int
    soak_seconds: float
    soak_rps: float
    batch_kills: int
    registry_calls: int


FULL = Budget("full", 10_000, 1_000_000, 20, 200.0, 5, 30 * 60, 100.0, 20, 100)
SHORT = Budget("short", 1_000, 50_000, 20, 200.0, 3, 3 * 60, 100.0, 5, 30)


@dataclasses.dataclass
class Home:
    """A trained churnops home: two registered versions (v1 champion, v2 challenger)."""

    path: Path
    versions: list[str]

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.path / 'mlflow.db').resolve()}"

    def settings(self, **overrides: Any) -> Any:
        """Settings on this home (and its own SQLite store unless overridden)."""
        from churnops.config import Settings

        return Settings(home=self.path, tracking_uri=self.tracking_uri, **overrides)

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment for a `churnops` subprocess on this home (no inherited CHURNOPS_*)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CHURNOPS_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))
        }
        env.update(
            CHURNOPS_HOME=str(self.path),
            CHURNOPS_TRACKING_URI=self.tracking_uri,
            PYTHONPATH=f"{ROOT / 'src'}:{ROOT}",
        )
        env.update(overrides)
        return env


def train_home(path: Path, versions: int = 2) -> Home:
    """Train and register `versions` tiny models in `path` (v1 becomes the champion)."""
    from tests.factories import make_customers

    from churnops.config import Settings
    from churnops.stages import train_and_register

    path.mkdir(parents=True, exist_ok=True)
    tracking = f"sqlite:///{(path / 'mlflow.db').resolve()}"
    settings = Settings(home=path, trials=2, cv_folds=3, tracking_uri=tracking)
    done = []
    for i in range(versions):
        summary = train_and_register(
            make_customers(800, seed=2 + i), settings, target="churn", id_column="customer_id"
        )
        done.append(str(summary["model_version"]))
    return Home(path, done)


def copy_home(home: Home, dest: Path) -> Home:
    """A private copy of a trained home, for checks that move aliases or corrupt files.

    MLflow records absolute artifact locations, so a copy would still read the original's
    files; checks that must not disturb others take a copy and rewrite nothing outside it.
    """
    shutil.copytree(home.path, dest)
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{dest / 'mlflow.db'}")
    old, new = str(home.path.resolve()), str(dest.resolve())
    with engine.begin() as conn:
        for table, cols in _PATH_COLUMNS.items():
            for col in cols:
                with contextlib.suppress(Exception):
                    conn.execute(
                        sa.text(f"UPDATE {table} SET {col} = REPLACE({col}, :old, :new)"),
                        {"old": old, "new": new},
                    )
    engine.dispose()
    return Home(dest, list(home.versions))


_PATH_COLUMNS = {
    "model_versions": ["source", "storage_location"],
    "runs": ["artifact_uri"],
    "experiments": ["artifact_location"],
    "logged_models": ["artifact_location"],
}


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(settings: Any, tag: str = "") -> dict[str, str]:
    """Create a scorer and an admin key in `settings`' store; return role -> key."""
    from churnops.serving.auth import create_key

    suffix = f"{tag}-{uuid.uuid4().hex[:8]}"
    return {
        "scorer": create_key(settings, f"rel-scorer-{suffix}", "scorer")["key"],
        "admin": create_key(settings, f"rel-admin-{suffix}", "admin")["key"],
    }


class Server:
    """`churnops serve` in a subprocess on 127.0.0.1 and a free port.

    A real process (not a thread) so checks can send it SIGTERM and read its RSS.
    """

    def __init__(self, home: Home, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        settings_env = {
            "CHURNOPS_SERVE_RATE_LIMIT": "0",
            "CHURNOPS_SERVE_ACCESS_LOG": "false",
            "CHURNOPS_SERVE_KEY_CACHE_SECONDS": "0",
        }
        settings_env.update(env)
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [CHURNOPS, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=home.env(**settings_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(home.path.parent),
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until /readyz answers 200 (raises when the process dies or time runs out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout}s: {self.tail()}")

    def rss_kb(self) -> int:
        """Resident memory of the server process (KiB, from /proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)


@contextlib.contextmanager
def serving(home: Home, log: Path, **env: str) -> Iterator[Server]:
    """A ready server for the block, stopped afterwards."""
    server = Server(home, log, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose search_path is a fresh PostgreSQL schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"rel_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def reachable(url: str) -> bool:
    """True when the host:port of a database/Redis URL accepts a TCP connection."""
    from urllib.parse import urlparse

    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=1).close()
    except OSError:
        return False
    return True


def scratch(prefix: str) -> Path:
    """A temporary folder for one check."""
    return Path(tempfile.mkdtemp(prefix=f"churnops-rel-{prefix}-"))
