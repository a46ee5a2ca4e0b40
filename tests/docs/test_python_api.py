"""Every Python block of docs/python-api.md runs, in order, in one interpreter.

The page is a notebook a reader copies from: its blocks run like cells, in an empty folder
with a fresh ``CHURNOPS_HOME``. A block above which the page writes ``<!-- no-run -->`` is
skipped; one marked ``<!-- with-server: NAME=VALUE ... -->`` gets a ``churnops serve``
started with those variables (relative paths are the page's folder), a scorer key, and
``CHURNOPS_API_URL`` / ``CHURNOPS_API_KEY`` (see docs/contributing.md).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.docs.blocks import DOCS, VENV_BIN, PythonSession, Server, clean_env, read_blocks

PAGE = DOCS / "python-api.md"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_python_api_page_runs_as_written(tmp_path: Path) -> None:
    if not PAGE.exists():
        pytest.skip("docs/python-api.md is not written yet")
    run_python_blocks(PAGE, tmp_path)


def run_python_blocks(page: Path, cwd: Path) -> None:
    """Run the page's Python blocks in ``cwd`` like a reader, failing on the first error."""
    blocks = [b for b in read_blocks(page) if b.is_python and not b.no_run]
    assert blocks, f"{page.name} has no Python block to run"
    env = clean_env(cwd / ".churnops")
    session = PythonSession(cwd, env, page)
    servers: list[Server] = []
    try:
        for block in blocks:
            if block.server_env is None and "CHURNOPS_API_" in block.text:
                pytest.fail(
                    f"{page.name}:{block.line}: this block needs a running server: put "
                    "`<!-- with-server: CHURNOPS_HOME=<the home it trained into> -->` on the "
                    "line above it, or `<!-- no-run -->` (docs/contributing.md)"
                )
            if block.server_env is not None:
                server_env = {**env, **block.server_env}
                servers.append(server := _start_server(cwd, server_env))
                key = _scorer_key(cwd, server_env)
                variables = {"CHURNOPS_API_URL": server.url, "CHURNOPS_API_KEY": key}
                setup = f"import os\nos.environ.update({json.dumps(variables)})\n"
                session.run_code(setup, line=block.line)
            answer = session.run(block)
            assert answer["ok"], (
                f"Python block at {page.name}:{block.line} failed:\n{answer['error']}"
            )
    finally:
        session.close()
        for server in servers:
            server.stop()


def _start_server(cwd: Path, env: dict[str, str]) -> Server:
    port = free_port()
    server = Server([str(VENV_BIN / "churnops"), "serve", "--port", str(port)], cwd, env, port)
    server.wait_ready()
    return server


def _scorer_key(cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(VENV_BIN / "churnops"), "keys", "create", "--name", "docs-test", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)["key"]
