"""docs/runbook.md runs as written, covers every alert, and its bill is its own arithmetic.

The page is what an on-call engineer types during an incident, so the test types it: every
block, in order, in one folder with its own ``CHURNOPS_HOME``, against a home prepared like
a production one — two model versions (v2 promoted over v1), a scored date, a key the CRM
uses, a running API that has served requests. Before a section whose incident can be made
on one machine, the test makes it (``INCIDENTS``: the API stopped, the champion moved to a
version whose files were changed, the registry unreachable); after the section's fix, it
checks the incident is over. So a fix that stops fixing fails here, not during an outage.

How the page's blocks run (the conventions of tests/docs/blocks.py, for a runbook):

- ``$ churnops …`` runs the venv's ``churnops``, with any ``NAME=VALUE`` prefixes in its
  environment; ``NAME=$(churnops …)`` keeps stdout in ``$NAME``. Every command must exit 0
  unless its block says ``<!-- expect-exit: N -->``.
- ``churnops serve … # runs in the background`` restarts the API: the running one is
  stopped, the new one started on the test's port and awaited on ``/readyz``.
- ``$ curl …`` is sent with httpx to the test's port and exits as curl would (7: nothing
  listens, 28: timeout, 22: an HTTP error with ``-f``); ``| grep [-E] [-c] PATTERN`` after
  it filters the body and exits 1 when no line matches, as grep does.
- ``<!-- with-server -->`` above a block: it talks to the API, which must be running (the
  test starts one if it is not).
- ``sql`` blocks run statement by statement against the home's store; the diagnostic ones
  (in an alert's section) must only read. ``test_sql_runs_on_postgresql`` runs them all on
  a PostgreSQL store too.
- ``<!-- no-run -->`` blocks are shown only: the few in ``NO_RUN``, each with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import POSTGRES_URL, free_port, home_tracking_uri, require_service
from tests.docs.blocks import (
    DOCS,
    ROOT,
    VENV_BIN,
    Block,
    Command,
    Server,
    clean_env,
    commands,
    read_blocks,
)

PAGE = DOCS / "runbook.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SIZING = ROOT / "bench" / "sizing.py"
PAGE_PORT = 8000
SCORED = date(2026, 3, 1)  # the date the page reruns
OLD = date(2025, 11, 1)  # a date older than the page's retention cut
ALERT_PARTS = ("**What it means.**", "**What users see.**", "**First three commands.**")
# The blocks that are shown and not run (their first command), and why each cannot run.
NO_RUN = {
    "sqlite3 .churnops/churnops.db": "opens an interactive SQL shell; the page's queries "
    "run through SQLAlchemy on SQLite and PostgreSQL instead",
    "docker compose -f deploy/docker-compose.yml logs --tail 30 api": "reads the logs of the "
    "compose stack or of a Kubernetes pod; neither Docker nor a cluster runs here",
    ".venv/bin/python bench/sizing.py --customers 1000000 --postgres --json > sizing.json": "the "
    "measurement takes half an hour of two cores; the bill it printed is checked instead "
    "(test_the_bill_is_the_arithmetic_of_the_measured_inputs)",
}

# ---------------------------------------------------------------------------- the page


@dataclass
class Section:
    """A heading of the page and the text under it, up to the next heading of its level."""

    level: int
    title: str
    line: int  # 1-based line of the heading
    end: int  # 1-based line after the section
    text: str


def sections(path: Path = PAGE) -> list[Section]:
    """Return every ``##``/``###``/``####`` section of a page (fences skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    heads: list[tuple[int, str, int]] = []
    fence = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fence = None if fence and stripped.startswith(fence) else (fence or stripped[:3])
            continue
        match = re.match(r"^(#{2,4}) (.+?)\s*$", line)
        if fence is None and match:
            heads.append((len(match[1]), match[2], number))
    found = []
    for i, (level, title, number) in enumerate(heads):
        end = next((n for lv, _, n in heads[i + 1 :] if lv <= level), len(lines) + 1)
        found.append(Section(level, title, number, end, "\n".join(lines[number : end - 1])))
    return found


def chain_at(line: int, all_sections: list[Section]) -> list[str]:
    """Return the titles of the sections that hold ``line``, outermost first."""
    return [s.title for s in all_sections if s.line < line < s.end]


def slug(title: str) -> str:
    """Return the anchor the site gives a heading (the ``toc`` extension's own slugify)."""
    from markdown.extensions.toc import slugify

    return str(slugify(title, "-"))


def alert_rules() -> list[dict[str, Any]]:
    """Return every alerting rule of deploy/prometheus/alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def sql_statements(block: Block) -> list[str]:
    """Split a ``sql`` block into statements (``;`` ends one; ``--`` comments dropped)."""
    text = "\n".join(line.split("--", 1)[0] for line in block.text.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


# ----------------------------------------------------------------------- static checks


def test_every_alert_has_a_section_with_its_parts() -> None:
    """An alert without a section (or with a section missing a part) fails here."""
    by_title = {s.title: s for s in sections() if s.level == 2}
    rules = alert_rules()
    assert rules, "alerts.yml has no alerting rules"
    for rule in rules:
        name = rule["alert"]
        assert name in by_title, f"docs/runbook.md has no `## {name}` section for its alert"
        text = by_title[name].text
        for part in (*ALERT_PARTS, "**Fix.**"):
            assert part in text, f"## {name}: no {part} paragraph"
        offset = by_title[name].line + 1  # the section's text starts on the next line
        lines = text.splitlines()
        first = offset + next(i for i, t in enumerate(lines) if "**First three commands.**" in t)
        fix = offset + next(i for i, t in enumerate(lines) if "**Fix.**" in t)
        commands_shown = sum(
            len(commands(b)) if b.lang == "console" else len(sql_statements(b))
            for b in read_blocks(PAGE)
            if first < b.line < fix
        )
        assert commands_shown >= 3, f"## {name}: {commands_shown} first commands, not 3"
        assert f"[{name}](#{slug(name)})" in PAGE.read_text(), f"{name} is not in the table"


def test_every_alert_section_names_an_alert() -> None:
    """A section left behind by a renamed or removed alert fails here."""
    alerts = {rule["alert"] for rule in alert_rules()}
    stale = [
        s.title
        for s in sections()
        if s.level == 2 and re.fullmatch(r"Churnops\w+", s.title) and s.title not in alerts
    ]
    assert not stale, f"sections for alerts alerts.yml does not have: {stale}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_runbook_url_points_at_the_alerts_section(rule: dict[str, Any]) -> None:
    """An alert's ``runbook_url`` annotation names this page and the alert's own anchor."""
    url = rule.get("annotations", {}).get("runbook_url")
    assert url, f"{rule['alert']} has no runbook_url annotation"
    path, _, anchor = url.partition("#")
    assert path.rstrip("/").endswith("runbook"), f"{url} is not the runbook page"
    assert anchor == slug(rule["alert"]), f"{url}: the section's anchor is #{slug(rule['alert'])}"


def test_diagnostic_sql_only_reads() -> None:
    """What an alert's section asks to run against a production store changes nothing."""
    alerts = {rule["alert"] for rule in alert_rules()}
    all_sections = sections()
    for block in read_blocks(PAGE):
        if block.lang == "sql" and set(chain_at(block.line, all_sections)) & alerts:
            for statement in sql_statements(block):
                assert re.match(r"(?is)^(select|with)\b", statement), (
                    f"docs/runbook.md:{block.line}: a diagnostic query that writes:\n{statement}"
                )


def test_no_run_blocks_are_the_known_few() -> None:
    """A block shown and never run is a deliberate exception, with a reason in ``NO_RUN``."""
    shown = {
        (commands(b)[0].text if commands(b) else b.text).split("#")[0].strip()
        for b in read_blocks(PAGE)
        if b.no_run
    }
    assert shown == set(NO_RUN), f"no-run blocks changed: {sorted(shown ^ set(NO_RUN))}"


def _sizing() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sizing", SIZING)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _keyed_table(section: Section) -> dict[str, float]:
    """Return the ``| `name` | value | …`` rows of a section's table as numbers."""
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*([-\d.,]+)\s*\|", section.text, re.M)
    return {name: float(value.replace(",", "")) for name, value in rows}


def test_the_bill_is_the_arithmetic_of_the_measured_inputs() -> None:
    """The bill on the page is what bench/sizing.py computes from the page's own inputs.

    Hand-edited numbers, or inputs from one run and a bill from another, fail here.
    """
    sizing = _sizing()
    by_title = {s.title: s for s in sections()}
    inputs = _keyed_table(by_title["Measured inputs"])
    assumptions = _keyed_table(by_title["Assumptions"])
    assert set(assumptions) == set(sizing.ASSUMPTIONS), "the page's assumptions differ in names"
    assert assumptions == pytest.approx(sizing.ASSUMPTIONS, rel=1e-3), "assumptions differ"
    expected = sizing.bill(inputs, assumptions)["scales"]
    table = by_title["The monthly bill"].text
    header = re.search(r"^\| item \|(.+)\|$", table, re.M)
    assert header is not None, "no bill table"
    scales = [cell.strip() for cell in header[1].split("|")]
    assert scales == list(expected)
    for label, scale in expected.items():
        column = scales.index(label) + 1
        for line in [*scale["lines"], {"item": "**total**", "usd": scale["total_usd"]}]:
            row = re.search(rf"^\| {re.escape(line['item'])} \|(.+)\|$", table, re.M)
            assert row is not None, f"the bill has no row {line['item']!r}"
            shown = float(row[1].split("|")[column - 1].strip(" *$").replace(",", ""))
            assert shown == pytest.approx(line["usd"], abs=0.005), (label, line["item"])


# -------------------------------------------------------------------- the page, run


@dataclass
class Call:
    """One command the page ran: where, what, and what came back."""

    chain: list[str]
    text: str
    exit: int
    stdout: str
    status: int | None = None  # HTTP status of a curl


@dataclass
class Reader:
    """Does what the on-call does, in ``cwd``; keeps what each command answered."""

    cwd: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    server: Server | None = None
    variables: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    crm_key: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> str:
        """The operational store's URL (the default: SQLite under the home)."""
        return f"sqlite:///{self.cwd / '.churnops' / 'churnops.db'}"

    def where(self, line: int) -> str:
        return f"docs/runbook.md:{line} ({' > '.join(self.chain)})"

    # -- servers

    def start_server(
        self, extra: dict[str, str] | None = None, argv: list[str] | None = None
    ) -> None:
        """Start (or restart) the API on the test's port and wait until it is ready."""
        self.stop_server()
        argv = argv or [str(VENV_BIN / "churnops"), "serve"]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(self.port)
        else:
            argv += ["--port", str(self.port)]
        self.server = Server(argv, self.cwd, {**self.env, **(extra or {})}, self.port)
        self.server.wait_ready(timeout=180)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- blocks

    def block(self, block: Block) -> None:
        if block.server_env is not None and self.server is None:
            self.start_server(block.server_env)
        if block.lang == "sql":
            for statement in sql_statements(block):
                rows = json.dumps(run_sql(self.store, statement), default=str)
                self.calls.append(Call(list(self.chain), statement, 0, rows))
                print(f"{self.where(block.line)}\n{statement}\n{rows[:1500]}")
        elif block.lang == "console":
            for command in commands(block):
                self.command(command, block.expect_exit)
        else:
            pytest.fail(f"{self.where(block.line)}: a {block.lang!r} block the test cannot run")

    def command(self, command: Command, expect_exit: int) -> None:
        where = self.where(command.line)
        text = command.text.split(" #")[0].strip() if command.background else command.text
        assign = re.match(r"^(\w+)=\$\((.*)\)$", text, re.S)
        argv = Command(assign[2] if assign else text, command.line).argv(self.variables)
        extra: dict[str, str] = {}
        while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
            name, _, value = argv.pop(0).partition("=")
            extra[name] = value
        if argv[0] == "curl":
            call = self.curl(argv, where)
        elif argv[0] == "churnops" and command.background:
            assert argv[1] == "serve", f"{where}: only `churnops serve` runs in the background"
            self.start_server(extra, [str(VENV_BIN / "churnops"), *argv[1:]])
            call = Call(list(self.chain), text, 0, "")
        elif argv[0] == "churnops":
            proc = subprocess.run(
                [str(VENV_BIN / "churnops"), *argv[1:]],
                cwd=self.cwd,
                env={**self.env, **extra},
                capture_output=True,
                text=True,
                timeout=300,
            )
            call = Call(list(self.chain), text, proc.returncode, proc.stdout)
            if proc.returncode != expect_exit:
                pytest.fail(
                    f"{where}: $ {text}\nexit {proc.returncode}, expected {expect_exit}\n"
                    f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
                )
            if assign:
                self.variables[assign[1]] = proc.stdout.strip()
        else:
            pytest.fail(f"{where}: $ {text}\nthe test runs churnops, curl and SQL only")
        assert call.exit == expect_exit, (
            f"{where}: $ {text}\nexit {call.exit}, expected {expect_exit}\n{call.stdout[-2000:]}"
        )
        self.calls.append(call)
        print(f"{where}\n$ {text}  [exit {call.exit}]\n{call.stdout[:1500]}")  # for a failure

    def curl(self, argv: list[str], where: str) -> Call:
        """Send a curl line with httpx; pipe its body through ``grep`` if the line does."""
        pipeline = [list(part) for part in _split_pipes(argv)]
        method, headers, body, url, fail, timeout = "GET", {}, None, None, False, 30.0
        args = iter(pipeline[0][1:])
        for arg in args:
            if arg in ("-X", "--request"):
                method = next(args)
            elif arg in ("-H", "--header"):
                name, _, value = next(args).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data", "--data-raw"):
                body = next(args)
                method = "POST" if method == "GET" else method
            elif arg in ("-m", "--max-time"):
                timeout = float(next(args))
            elif arg in ("-f", "--fail"):
                fail = True
            elif arg in ("-s", "--silent"):
                continue
            elif arg.startswith("-"):
                pytest.fail(f"{where}: curl option {arg} is not one the test knows")
            else:
                url = arg
        assert url is not None, f"{where}: curl without a URL"
        assert f"127.0.0.1:{PAGE_PORT}" in url, f"{where}: the page's API is 127.0.0.1:{PAGE_PORT}"
        url = url.replace(f"127.0.0.1:{PAGE_PORT}", f"127.0.0.1:{self.port}")
        text = " | ".join(shlex.join(part) for part in pipeline)
        try:
            response = httpx.request(method, url, headers=headers, content=body, timeout=timeout)
        except httpx.ConnectError:
            return Call(list(self.chain), text, 7, "")
        except httpx.TimeoutException:
            return Call(list(self.chain), text, 28, "")
        out, code = response.text, 22 if fail and response.status_code >= 400 else 0
        for grep in pipeline[1:]:
            out, code = _grep(grep, out, where)
        return Call(list(self.chain), text, code, out, response.status_code)

    # -- what the hooks read

    def answers(self, section: str, pattern: str) -> list[Call]:
        """Return the calls made in ``section`` whose text matches ``pattern``."""
        return [c for c in self.calls if section in c.chain and re.search(pattern, c.text)]

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)


def _split_pipes(argv: list[str]) -> Iterator[list[str]]:
    part: list[str] = []
    for word in argv:
        if word == "|":
            yield part
            part = []
        else:
            part.append(word)
    yield part


def _grep(argv: list[str], text: str, where: str) -> tuple[str, int]:
    """``grep [-E] [-c] PATTERN`` on ``text``: the lines (or their count) and grep's exit."""
    assert argv[0] == "grep", f"{where}: only grep may follow curl in a pipe"
    options = [a for a in argv[1:] if a.startswith("-")]
    assert set(options) <= {"-E", "-c"}, f"{where}: grep options {options}"
    (pattern,) = [a for a in argv[1:] if not a.startswith("-")]
    lines = [line for line in text.splitlines() if re.search(pattern, line)]
    out = str(len(lines)) if "-c" in options else "\n".join(lines)
    return out, 0 if lines else 1


def run_sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on a store; return its rows (none for a write)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(statement)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


# ----------------------------------------------------------------- incidents and checks


def _settings(cwd: Path) -> Any:
    """The home's settings, for the steps the test takes in its own process."""
    from churnops.config import Settings

    home = cwd / ".churnops"
    return Settings(
        home=home, tracking_uri=home_tracking_uri(home), trials=1, cv_folds=3, families=["logistic"]
    )


def stop_api(reader: Reader) -> None:
    """The incident of ChurnopsApiDown: the API process is gone."""
    reader.stop_server()


def api_serves(version: str | None, source: str) -> Callable[[Reader], None]:
    """Return a check: the running API is ready, serving ``version`` from ``source``."""

    def check(reader: Reader) -> None:
        assert reader.server is not None, "the section's fix left no API running"
        ready = reader.get("/readyz").json()
        assert ready["status"] == "ready", ready
        assert ready["source"] == source, ready
        if version is not None:
            assert ready["model"]["version"] == version, ready

    return check


def corrupt_previous_champion(reader: Reader) -> None:
    """The incident of ChurnopsReloadFailing: the alias moved to a version whose files changed.

    v1's contract is rewritten after its registration (as a corrupted artifact store would),
    then someone rolls the champion back to v1: the API's reload must refuse it.
    """
    from churnops.registry import load_model, rollback

    settings = _settings(reader.cwd)
    contract = load_model(settings, version="1").files / "contract.json"
    reader.state["contract"] = (contract, contract.read_bytes())
    contract.write_text(contract.read_text().replace('"', "'", 2))
    assert rollback(settings).to_version == "1"


def reload_refused_then_fixed(reader: Reader) -> None:
    """The first reload answered 409 and kept v2; the fix's reload answers 200 on v2."""
    from churnops.registry import CHAMPION, get_version

    reloads = reader.answers("ChurnopsReloadFailing", r"/v1/admin/reload")
    assert [c.status for c in reloads] == [409, 200], [(c.status, c.stdout) for c in reloads]
    assert "still serving v2" in json.loads(reloads[0].stdout)["message"]
    assert get_version(_settings(reader.cwd), alias=CHAMPION).version == "2"
    api_serves("2", "registry")(reader)
    contract, original = reader.state.pop("contract")
    contract.write_bytes(original)  # the artifact store restored, for the fixes below


def monitor_saw_drift(reader: Reader) -> None:
    """The drifted batch is reported as drift, not as ``OK``."""
    (call,) = reader.answers("ChurnopsChurnRateShift", r"^churnops monitor")
    assert call.stdout.split()[0] in ("DRIFT", "RETRAIN"), call.stdout


def remember_scored_run(reader: Reader) -> None:
    reader.state["run"] = _date_run(reader, SCORED)


def date_replaced(reader: Reader) -> None:
    """The rerun replaced the date: a new run shows it, each customer once."""
    run = _date_run(reader, SCORED)
    assert run != reader.state.pop("run"), "the date still shows the run from before"
    rows = run_sql(
        reader.store,
        f"SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM churn_scores "
        f"WHERE scoring_date = '{SCORED}'",
    )
    assert rows == [(2000, 2000)], rows


def _date_run(reader: Reader, day: date) -> int:
    rows = run_sql(
        reader.store,
        f"SELECT run_id FROM scoring_dates WHERE scoring_date = '{day}'",
    )
    return int(rows[0][0])


def old_key_refused(reader: Reader) -> None:
    """After the rotation the old key gets 401 (within the key cache's delay); the new works."""
    new = reader.variables["NEW_KEY"]
    assert reader.get("/v1/model", new).status_code == 200
    deadline = time.monotonic() + 30
    while reader.get("/v1/model", reader.crm_key).status_code != 401:  # bounded: 30 s
        assert time.monotonic() < deadline, "the revoked key is still accepted after 30 s"
        time.sleep(0.5)


def registry_outage(reader: Reader) -> None:
    """The registry stops answering, and the API is down (it has to start during the outage)."""
    reader.stop_server()
    reader.state["tracking"] = reader.env.get("MLFLOW_TRACKING_URI")
    reader.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"  # nothing listens


def registry_back(reader: Reader) -> None:
    tracking = reader.state.pop("tracking")
    if tracking is None:
        reader.env.pop("MLFLOW_TRACKING_URI")
    else:
        reader.env["MLFLOW_TRACKING_URI"] = tracking


def reference_rebuilt(reader: Reader) -> None:
    """``--reference`` compared with the file given; then v3 became the API's champion."""
    section = "Rebuild the drift reference"
    (call,) = reader.answers(section, r"--reference data/accepted")
    assert "vs 2,000 reference rows" in call.stdout, call.stdout
    (reload,) = reader.answers(section, r"/v1/admin/reload")
    assert json.loads(reload.stdout)["new_version"] == "3", reload.stdout
    (after,) = reader.answers(section, r"^churnops monitor data/today.parquet$")
    assert after.stdout.split("\n")[0].split()[2:4] == ["churn-model", "v3,"], after.stdout


def old_date_pruned(reader: Reader) -> None:
    """The retention statements removed the old date (its rows go at the next run's sweep)."""
    days = {str(r[0]) for r in run_sql(reader.store, "SELECT scoring_date FROM scoring_dates")}
    assert str(OLD) not in days, days
    assert str(SCORED) in days, days


def make_traffic(reader: Reader) -> None:
    """A few calls of the CRM, as a running API has had: scores, and one bad key."""
    import pyarrow.parquet as pq

    records = pq.read_table(reader.cwd / "data" / "customers.parquet").slice(0, 3).to_pylist()
    for record in records:
        record.pop("churn")
        answer = httpx.post(
            f"{reader.url}/v1/predict",
            json=record,
            headers={"Authorization": f"Bearer {reader.crm_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    assert httpx.post(f"{reader.url}/v1/predict", json={}, timeout=30).status_code == 401


@dataclass
class Incident:
    """What the test does before a section (make its incident) and after it (check)."""

    before: Callable[[Reader], None] | None = None
    after: Callable[[Reader], None] | None = None


INCIDENTS: dict[str, Incident] = {
    "ChurnopsApiDown": Incident(stop_api, api_serves("2", "registry")),
    "ChurnopsReloadFailing": Incident(corrupt_previous_champion, reload_refused_then_fixed),
    "ChurnopsServerErrors": Incident(before=make_traffic),
    "ChurnopsChurnRateShift": Incident(after=monitor_saw_drift),
    "Roll back the champion": Incident(after=api_serves("1", "registry")),
    "Rerun a scoring date": Incident(remember_scored_run, date_replaced),
    "Rotate an API key": Incident(after=old_key_refused),
    "While the registry is down": Incident(registry_outage, api_serves("1", "last-known-good")),
    "When the registry is back": Incident(registry_back, api_serves("1", "registry")),
    "Rebuild the drift reference": Incident(after=reference_rebuilt),
    "Keep the store's size bounded": Incident(after=old_date_pruned),
}


# --------------------------------------------------------------------------- the home


def prepare_home(cwd: Path) -> str:
    """Make the folder a production API would run in; return the CRM's key.

    In this process, through the stage functions (a CLI process per step would cost its
    imports each time): a settings file with a small training budget (for the page's own
    ``churnops train``), the tables the page names, v1 trained, v2 trained and promoted,
    two scored dates, and the CRM's scorer key.
    """

    from churnops.batch.job import score
    from churnops.data.sources import read_parquet
    from churnops.data.synth import write_synthetic
    from churnops.registry import promote
    from churnops.serving.auth import create_key
    from churnops.stages import train_and_register

    (cwd / "churnops.yaml").write_text("trials: 1\ncv_folds: 3\nfamilies: [logistic]\n")
    customers = write_synthetic(cwd / "data" / "customers.parquet", 2000, seed=1)
    write_synthetic(cwd / "data" / "today.parquet", 2000, seed=2, drift=1.0)
    write_synthetic(cwd / "data" / "accepted.parquet", 2000, seed=3, drift=1.0)
    settings = _settings(cwd)
    table = read_parquet(customers)
    first = train_and_register(table, settings, target="churn", id_column="customer_id")
    assert first["model_version"] == "1"
    other = read_parquet(write_synthetic(cwd / "data" / "march.parquet", 2000, seed=4))
    second = train_and_register(other, settings, target="churn", id_column="customer_id")
    assert second["model_version"] == "2"
    assert promote(settings, min_delta=-1.0).decision == "promoted"
    for day in (OLD, SCORED):
        score(settings, customers, scoring_date=day)
    return create_key(settings, "crm", "scorer")["key"]


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    r = Reader(tmp_path, clean_env(tmp_path / ".churnops"))
    try:
        yield r
    finally:
        r.stop_server()


@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_runbook_runs_as_written(reader: Reader) -> None:
    started = time.monotonic()
    reader.crm_key = prepare_home(reader.cwd)
    reader.start_server()
    make_traffic(reader)
    print(f"home ready in {time.monotonic() - started:.0f} s")

    all_sections = sections()
    entered: list[str] = []
    for block in read_blocks(PAGE):
        if block.no_run:
            continue
        chain = chain_at(block.line, all_sections)
        _move(reader, chain, entered)
        reader.block(block)
    _move(reader, [], entered)
    missing = set(INCIDENTS) - set(entered)
    assert not missing, f"sections the test makes incidents for are gone: {sorted(missing)}"
    print(f"docs/runbook.md ran in {time.monotonic() - started:.0f} s")


def _move(reader: Reader, chain: list[str], entered: list[str]) -> None:
    """Leave the sections ``reader`` is in and ``chain`` is not (checks), enter the new ones."""
    for title in reversed(reader.chain):
        if title not in chain and (incident := INCIDENTS.get(title)) and incident.after:
            incident.after(reader)
    for title in chain:
        if title not in reader.chain:
            entered.append(title)
            if (incident := INCIDENTS.get(title)) and incident.before:
                incident.before(reader)
    reader.chain = list(chain)


@pytest.mark.integration
def test_sql_runs_on_postgresql(tmp_path: Path) -> None:
    """Every SQL statement of the page runs on a PostgreSQL store (the production one)."""
    import uuid

    import sqlalchemy as sa

    require_service(POSTGRES_URL, "PostgreSQL")
    schema = f"runbook_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        env = clean_env(tmp_path / ".churnops") | {"CHURNOPS_DATABASE_URL": url}
        subprocess.run(
            [str(VENV_BIN / "churnops"), "db", "upgrade"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        statements = [s for b in read_blocks(PAGE) if b.lang == "sql" for s in sql_statements(b)]
        assert len(statements) >= 6
        for statement in statements:
            run_sql(url, statement)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
