"""The Prometheus configuration loads, and every alert is unit-tested firing and quiet.

``promtool`` (Debian's ``prometheus`` package, installed by ``make tools``) checks the
rules and the server configuration as Prometheus itself would load them, and runs the
rule unit tests in ``deploy/prometheus/tests/``. An alert nobody ever saw fire, or saw
keep quiet, is a guess: a new alert without both cases fails this suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def _promtool() -> str:
    """Return promtool's path; skip locally (fail in CI) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool must be installed in CI (make tools)")
        pytest.skip("promtool is not installed (make tools installs Debian's prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool and fail with its own output when it does not succeed."""
    done = subprocess.run(
        [_promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def _alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def _cases() -> list[dict[str, Any]]:
    """Return every alert_rule_test case of every unit test file."""
    cases = []
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases += test.get("alert_rule_test", [])
    return cases


def test_rules_pass_promtool_check() -> None:
    """The rules parse and their expressions are valid PromQL."""
    done = _run("check", "rules", str(RULES))
    assert f"{len(_alerts())} rules found" in done.stdout


def test_server_config_loads_with_the_rules() -> None:
    """prometheus.yml loads and finds alerts.yml (rule_files is relative to the config, so
    the same file works in the container and here)."""
    done = _run("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "1 rule files found" in done.stdout


def test_rule_unit_tests_pass() -> None:
    """Every promtool case gives exactly the alerts it expects, labels and annotations."""
    assert UNIT_TESTS
    for path in UNIT_TESTS:
        rule_files = yaml.safe_load(path.read_text())["rule_files"]
        assert [(path.parent / f).resolve() for f in rule_files] == [RULES.resolve()], path
    _run("test", "rules", *map(str, UNIT_TESTS))


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """Each alert in alerts.yml is expected to fire somewhere and to stay quiet somewhere."""
    cases = _cases()
    tested = {case["alertname"] for case in cases}
    assert tested <= _alerts(), f"tests for unknown alerts: {tested - _alerts()}"
    for alert in sorted(_alerts()):
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case.get("exp_alerts") for case in mine), f"{alert}: no firing case"
        assert any(not case.get("exp_alerts") for case in mine), f"{alert}: no quiet case"
