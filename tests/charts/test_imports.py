"""Plotly is imported where something is drawn, and nowhere else.

Structural, not timed: the modules a fresh process loaded are read from ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# What `churnops score`, `serve` and `models` import, at start and while they work.
NO_PLOTLY = (
    "churnops.cli",
    "churnops.cli.batch",
    "churnops.cli.models",
    "churnops.cli.serve",
    "churnops.batch",
    "churnops.batch.job",
    "churnops.scoring",
    "churnops.serving.app",
    "churnops.registry",
    "churnops.registry.overview",
    "churnops.monitoring",
    "churnops.monitoring.store",
    "churnops.campaign",
)


def _loaded(code: str, tmp_path: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CHURNOPS_HOME": str(tmp_path / "home")},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_stage_and_command_modules_do_not_import_plotly(tmp_path: Path) -> None:
    code = "import importlib, json, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in NO_PLOTLY)
    code += "print(json.dumps(sorted(sys.modules)))\n"
    assert not {m for m in _loaded(code, tmp_path) if m.split(".")[0] == "plotly"}


@pytest.mark.parametrize("argv", [["models", "--json"], ["score", "--help"]], ids=str)
def test_commands_do_not_import_plotly(tmp_path: Path, argv: list[str]) -> None:
    code = (
        "import atexit, json, runpy, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['churnops', *{argv!r}]\n"
        "try:\n    runpy.run_module('churnops', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
    )
    assert not {m for m in _loaded(code, tmp_path) if m.split(".")[0] == "plotly"}
