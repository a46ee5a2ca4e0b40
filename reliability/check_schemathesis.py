"""Schemathesis against a real server: every route, all checks, positive and negative data.

Why: the OpenAPI spec is the contract clients and gateways are built from. A 5xx means an
input reached code that did not expect it; an undocumented status means the spec lies.
Runs the `schemathesis` CLI (its phases: examples, coverage, fuzzing) with an admin key as
`Authorization: Bearer`, and reads its JSON report; rounds with new seeds are added until
the number of generated cases reaches the budget (bounded: at most 6 rounds).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

from reliability.common import Budget, Home, Result, make_keys, scratch, serving

SCHEMATHESIS = str(Path(__import__("sys").executable).with_name("schemathesis"))
SERVER_ERROR = "ServerError"
UNDOCUMENTED = "UndefinedStatusCode"


def run(home: Home, budget: Budget) -> Result:
    """Fuzz the API until `budget.schemathesis_cases` cases ran; count failures by kind."""
    started = time.monotonic()
    work = scratch("schemathesis")
    keys = make_keys(home.settings(), "st")
    generated = 0
    kinds: Counter[str] = Counter()
    codes: dict[str, str] = {}
    operations: set[str] = set()
    errors = 0
    rounds = 0
    with serving(home, work / "server.log") as server:
        per_op = max(10, budget.schemathesis_cases // 15)
        while generated < budget.schemathesis_cases and rounds < 6:
            report = work / f"report-{rounds}.json"
            cmd = [
                SCHEMATHESIS,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--mode",
                "all",
                "-n",
                str(per_op),
                "--seed",
                str(1000 + rounds),
                "-H",
                f"Authorization: Bearer {keys['admin']}",
                "--continue-on-failure",
                "--no-shrink",
                "--request-timeout",
                "30",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
                str(report),
            ]
            with (work / f"cli-{rounds}.txt").open("wb") as out:
                subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=3600, check=False)
            rounds += 1
            if not report.exists():
                errors += 1
                continue
            data = json.loads(report.read_text())
            generated += int(data["test_cases"]["generated"])
            errors += len(data.get("errors") or [])
            for failure in data.get("failures") or []:
                kinds[failure["type"]] += int(failure.get("count", 1))
                codes[failure["type"]] = f"{failure.get('code')} {failure.get('title')}"
                operations.update(failure.get("operations") or [])
            tested = data["operations"]["tested"]
            total = data["operations"]["total"]
    server_errors = kinds.get(SERVER_ERROR, 0)
    undocumented = kinds.get(UNDOCUMENTED, 0)
    other = {k: v for k, v in kinds.items() if k not in (SERVER_ERROR, UNDOCUMENTED)}
    passed = (
        generated >= budget.schemathesis_cases
        and server_errors == 0
        and undocumented == 0
        and errors == 0
        and tested == total
    )
    detail = (
        f"{rounds} round(s), {tested}/{total} operations tested; unique failures by kind: "
        + (", ".join(f"{codes[k]} ×{v}" for k, v in sorted(kinds.items())) or "none")
        + (f" (on {', '.join(sorted(operations))})" if operations else "")
        + (f"; other checks failing: {', '.join(sorted(other))}" if other else "")
        + f"; schemathesis errors: {errors}; reports in {work}"
    )
    return Result(
        "schemathesis",
        f"{generated:,} cases; {server_errors} server errors, {undocumented} undocumented "
        "statuses (unique)",
        f"≥ {budget.schemathesis_cases:,} cases, 0 server errors, 0 undocumented statuses",
        passed,
        detail,
        time.monotonic() - started,
    )
