"""docs/own-table.md runs as written: every block, in order, in an empty folder.

Python blocks run in one interpreter (like a notebook). In console blocks each ``$ churnops``
line is a process of the venv's ``churnops``; ``NAME=$(churnops …)`` keeps its stdout in a
variable; a line marked ``# runs in the background`` (the server) is started, awaited on
``/readyz`` and stopped at the end; ``$ curl`` is sent with httpx, to the port the test
gave the server. Every command must exit 0 unless its block says ``<!-- expect-exit: N -->``.
The checks below hold the outputs the page's story depends on — on stable top-level keys,
so they survive changes in what monitoring derives.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.docs.blocks import (
    DOCS,
    VENV_BIN,
    Block,
    Command,
    PythonSession,
    Server,
    clean_env,
    commands,
    read_blocks,
)

PAGE = DOCS / "own-table.md"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

Check = Callable[[Path, str, Any], None]


def _json(stdout: str) -> Any:
    return json.loads(stdout[stdout.index("{") :])


def check_contract(cwd: Path, stdout: str, argv: list[str]) -> None:
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("contract.json")
    contract = json.loads((cwd / out).read_text())
    roles = {c["name"]: c["role"] for c in contract["columns"]}
    assert contract["target"] == "churn"
    assert contract["id"] == "account_id"
    assert roles["as_of"] == "time", "the snapshot date is the time column, not a feature"


def check_validate(cwd: Path, stdout: str, argv: list[str]) -> None:
    if "bad_calls.csv" in argv:
        assert "Texas" in stdout, "the refusal names the value that was sent"
        assert "total_day_minutes" in stdout


def check_train(cwd: Path, stdout: str, argv: list[str]) -> None:
    result = _json(stdout)
    assert result["model_version"] == "1"
    assert "champion" in result["aliases"]
    assert result["holdout"]["roc_auc"] > 0.75


def check_score(cwd: Path, stdout: str, argv: list[str]) -> None:
    run = _json(stdout)
    assert run["status"] == "succeeded"
    assert run["rows_scored"] == run["rows_in"] == 1000


def check_monitor(cwd: Path, stdout: str, argv: list[str]) -> None:
    result = _json(stdout)
    assert {"verdict", "retrain", "reasons", "drift_share", "estimated", "realised"} <= set(result)
    assert result["verdict"] in ("ok", "drift", "retrain")
    assert result["realised"] is not None, "--labels gives realised metrics"
    if "--report" in argv:
        assert (cwd / argv[argv.index("--report") + 1]).stat().st_size > 0


def check_init(cwd: Path, stdout: str, argv: list[str]) -> None:
    settings = yaml.safe_load((cwd / "churnops.yaml").read_text())
    assert settings["pipeline_source"] == argv[2]
    assert settings["pipeline_target"] == "churn"


CHECKS: dict[str, Check] = {
    "init": check_init,
    "data contract": check_contract,
    "validate": check_validate,
    "train": check_train,
    "score": check_score,
    "monitor": check_monitor,
}


def _subcommand(argv: list[str]) -> str:
    words = [a for a in argv[1:] if not a.startswith("-")]
    two = " ".join(words[:2])
    return two if two in CHECKS else (words[0] if words else "")


class Reader:
    """Does what a reader of the page does, in ``cwd``."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = clean_env(cwd / ".churnops")
        self.variables: dict[str, str] = {}
        self.ran: list[str] = []
        self.timings: list[tuple[float, str]] = []
        self.server: Server | None = None
        self.page_port = 8000
        self.port = free_port()
        self.python = PythonSession(cwd, self.env, PAGE)

    def close(self) -> None:
        self.python.close()
        if self.server is not None:
            self.server.stop()  # Ctrl-C, as the page says

    def python_block(self, block: Block) -> None:
        answer = self.python.run(block)
        assert answer["ok"], f"Python block at docs/own-table.md:{block.line} failed:\n" + str(
            answer["error"]
        )

    def command(self, command: Command, expect_exit: int) -> None:
        where = f"docs/own-table.md:{command.line}: $ {command.text}"
        assign = re.match(r"^(\w+)=\$\((.*)\)$", command.text.split(" #")[0].strip(), re.S)
        text = assign[2] if assign else command.text
        argv = Command(text, command.line).argv(self.variables)
        if argv[0] == "curl":
            self.curl(argv, where)
            return
        assert argv[0] == "churnops", f"{where}\nthe test runs only churnops and curl lines"
        argv = [str(VENV_BIN / "churnops"), *argv[1:]]
        if command.background:
            self.start_server(argv, where)
            return
        started = time.monotonic()
        proc = subprocess.run(
            argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=240
        )
        self.timings.append((time.monotonic() - started, command.text[:70]))
        assert proc.returncode == expect_exit, (
            f"{where}\nexit {proc.returncode}, expected {expect_exit}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
        name = _subcommand(argv)
        self.ran.append(name)
        if assign:
            self.variables[assign[1]] = proc.stdout.strip()
        if name in CHECKS:
            CHECKS[name](self.cwd, proc.stdout, argv)

    def start_server(self, argv: list[str], where: str) -> None:
        if "--port" in argv:
            at = argv.index("--port") + 1
            self.page_port = int(argv[at])
            argv[at] = str(self.port)
        else:
            argv += ["--port", str(self.port)]
        self.ran.append(_subcommand(argv))
        self.server = Server(argv, self.cwd, self.env, self.port)
        try:
            self.server.wait_ready()
        except RuntimeError as exc:
            pytest.fail(f"{where}\n{exc}")

    def curl(self, argv: list[str], where: str) -> None:
        method, headers, body, url = "GET", {}, None, None
        args = iter(argv[1:])
        for arg in args:
            if arg in ("-X", "--request"):
                method = next(args)
            elif arg in ("-H", "--header"):
                name, _, value = next(args).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data", "--data-raw"):
                body = next(args)
                method = "POST" if method == "GET" else method
            elif arg.startswith("-"):
                continue  # -s, -f, ...: output details
            else:
                url = arg
        assert url is not None, f"{where}\nno URL"
        url = url.replace(f"127.0.0.1:{self.page_port}", f"127.0.0.1:{self.port}")
        response = httpx.request(method, url, headers=headers, content=body, timeout=30)
        assert response.status_code == 200, f"{where}\n{response.status_code}: {response.text}"
        answer = response.json()
        self.ran.append("curl " + httpx.URL(url).path)
        if httpx.URL(url).path == "/v1/predict":
            assert 0.0 <= answer["probability"] <= 1.0
            assert answer["customer_id"] == "104001"
            if "explain=true" in url:
                assert answer["reasons"], "?explain=true answers the top reasons"


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    r = Reader(tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_own_table_page_runs_as_written(reader: Reader) -> None:
    started = time.monotonic()
    for block in read_blocks(PAGE):
        if block.no_run:
            continue
        if block.is_python:
            reader.python_block(block)
        elif block.lang == "console":
            for command in commands(block):
                reader.command(command, block.expect_exit)
        elif block.title:
            (reader.cwd / block.title).write_text(block.text)
            if block.title == "churnops.yaml":
                check_settings_file(yaml.safe_load(block.text))

    # The page is the whole loop on a table that is not the demo's.
    for step in ("data contract", "validate", "train", "keys", "serve", "score", "monitor"):
        assert step in reader.ran, f"the page no longer runs `churnops {step}`"
    assert "curl /v1/predict" in reader.ran
    print(f"docs/own-table.md ran in {time.monotonic() - started:.0f} s; slowest commands:")
    for seconds, text in sorted(reader.timings, reverse=True)[:5]:
        print(f"  {seconds:5.1f} s  $ {text}")


def check_settings_file(data: dict[str, Any]) -> None:
    """A settings file shown on the page names real settings with valid values."""
    from churnops.config import Settings

    unknown = set(data) - set(Settings.model_fields)
    assert not unknown, f"churnops.yaml on the page names unknown settings: {sorted(unknown)}"
    Settings(**data)
