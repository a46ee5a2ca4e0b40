"""Coverage-guided fuzzing (atheris/libFuzzer) of the record codec and the model loaders.

Why: the codec reads every byte a client sends, and the loaders read files that may have
been tampered with or half-written; either must answer bad input with a declared error
(`churnops.errors`, or pydantic's ValidationError for a contract), never anything else.
Each target runs in its own process with `-runs=N`; the execution count is libFuzzer's
own ("Done N runs"), findings are the distinct undeclared exceptions the target recorded
plus any hard crash (signal, libFuzzer error) of the process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from reliability.common import PYTHON, ROOT, Budget, Home, Result, scratch

TARGETS = ("codec", "contract", "artifact")
DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def fuzz(target: str, runs: int, work: Path) -> tuple[int, int, list[str], str]:
    """Run one target; return (executions, seconds, findings, exit note)."""
    out = work / target
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    env = {**os.environ, "RELIABILITY_FUZZ_TARGET": target, "RELIABILITY_FUZZ_DIR": str(out)}
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
    subprocess.run(
        [PYTHON, "-c", f"from reliability.fuzz_targets import write_seeds as w; "
         f"from pathlib import Path; w({target!r}, Path({str(corpus)!r}))"],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    log = out / "fuzz.log"
    with log.open("wb") as handle:
        proc = subprocess.run(
            [
                PYTHON,
                "-m",
                "reliability.fuzz_targets",
                f"-runs={runs}",
                "-max_len=16384",
                "-timeout=60",
                "-rss_limit_mb=4096",
                f"-artifact_prefix={out}/",
                str(corpus),
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=str(out),
            timeout=6 * 3600,
            check=False,
        )
    text = log.read_text(errors="replace")
    match = DONE.search(text)
    executions, seconds = (int(match[1]), int(match[2])) if match else (0, 0)
    findings = []
    found = out / "findings.jsonl"
    if found.exists():
        for line in found.read_text().splitlines():
            item = json.loads(line)
            findings.append(f"{item['error'][:120]} at {item['key'].split('@')[-1]}")
    note = ""
    if proc.returncode != 0 or not match:
        tail = [x for x in text.splitlines() if "ERROR" in x or "Uncaught" in x or "deadly" in x]
        note = f"exit {proc.returncode}: {'; '.join(tail[:3]) or text[-300:]}"
        findings.append(f"process crash ({note})")
    return executions, seconds, findings, note


def run(home: Home, budget: Budget) -> list[Result]:
    """One result row per target."""
    del home  # the targets read the committed model fixtures, not the trained home
    work = scratch("fuzz")
    results = []
    for target in TARGETS:
        started = time.monotonic()
        executions, _, findings, _ = fuzz(target, budget.fuzz_runs, work)
        seconds = time.monotonic() - started  # libFuzzer's own count is whole seconds
        where = {"codec": "RecordCodec.encode/encode_matrix", "contract": "DataContract JSON",
                 "artifact": "load_artifact"}[target]  # fmt: skip
        rate = executions / seconds
        results.append(
            Result(
                f"fuzz: {target}",
                f"{executions:,} executions ({rate:,.0f}/s); {len(findings)} undeclared crash(es)",
                f"≥ {budget.fuzz_runs:,} executions, 0 crashes ({where})",
                executions >= budget.fuzz_runs and not findings,
                "; ".join(findings) + (f"; findings in {work / target}" if findings else ""),
                time.monotonic() - started,
            )
        )
    return results
