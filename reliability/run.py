"""Run the reliability checks, print the figures, write them to docs/reliability.md.

    python -m reliability.run [--budget short|full] [--only NAME,...] [--home DIR] [--no-docs]

Trains two tiny model versions once in a temporary home (unless --home names a trained
one), runs each check against real servers and stores, and exits 1 when any target is
missed — the table says which and why. docs/reliability.md keeps its hand-written intro;
only the table of the budget that ran is replaced (between its markers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from reliability.common import FULL, ROOT, SHORT, Home, Result, scratch, train_home

CHECKS = {
    "auth": "check_auth",
    "schemathesis": "check_schemathesis",
    "reload": "check_reload",
    "shutdown": "check_shutdown",
    "registry": "check_registry",
    "batch": "check_batch",
    "fuzz": "check_fuzz",
    "soak": "check_soak",
}
DOC = ROOT / "docs" / "reliability.md"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen checks; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=("short", "full"), default="full")
    parser.add_argument("--only", default="", help="comma-separated: " + ",".join(CHECKS))
    parser.add_argument("--home", type=Path, help="a home with two trained versions")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the doc")
    args = parser.parse_args(argv)
    budget = FULL if args.budget == "full" else SHORT
    names = [n for n in args.only.split(",") if n] or list(CHECKS)
    unknown = set(names) - set(CHECKS)
    if unknown:
        parser.error(f"unknown check(s): {', '.join(sorted(unknown))}")

    began = time.monotonic()
    if args.home:
        home = Home(args.home, ["1", "2"])
    else:
        print("training two tiny model versions ...", flush=True)
        home = train_home(scratch("home") / "home")
    results: list[Result] = []
    for name in names:
        print(f"== {name} ({budget.name})", flush=True)
        t = time.monotonic()
        try:
            out = importlib.import_module(f"reliability.{CHECKS[name]}").run(home, budget)
            got = out if isinstance(out, list) else [out]
        except Exception as exc:  # a check that cannot run is a failed row, not a crash
            traceback.print_exc()
            why = f"{type(exc).__name__}: {str(exc)[:300]}"
            got = [Result(name, "did not complete", "completes", False, why, time.monotonic() - t)]
        for r in got:
            print(f"   {'PASS' if r.passed else 'FAIL'} {r.check}: {r.figure}", flush=True)
        results.extend(got)
    table = render(results)
    print("\n" + table)
    if not args.no_docs and set(names) == set(CHECKS):
        write_doc(budget.name, table, time.monotonic() - began)
    return 0 if all(r.passed for r in results) else 1


def render(results: list[Result]) -> str:
    """A Markdown table: check, figure, target, pass/fail, time; then the details."""
    lines = ["| check | figure | target | result | time |", "|---|---|---|---|---|"]
    for r in results:
        ok = "pass" if r.passed else "**FAIL**"
        lines.append(f"| {r.check} | {r.figure} | {r.target} | {ok} | {r.seconds:.0f} s |")
    notes = [f"- **{r.check}**: {r.detail}" for r in results if r.detail]
    return "\n".join(lines + (["", *notes] if notes else []))


def write_doc(budget: str, table: str, seconds: float) -> None:
    """Replace this budget's table in docs/reliability.md (between its markers)."""
    start, end = f"<!-- figures:{budget}:start -->", f"<!-- figures:{budget}:end -->"
    text = DOC.read_text() if DOC.exists() else ""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()[:90] or os.environ.get("RELIABILITY_COMMIT", "?")  # fmt: skip
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"{start}\nRun {stamp}, `make reliability{'-short' if budget == 'short' else ''}`, "
        f"main at `{commit}`, {seconds / 60:.0f} min on this machine.\n\n{table}\n{end}"
    )
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n### {budget} run\n\n{block}\n"
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    sys.exit(main())
