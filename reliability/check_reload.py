"""Champion reloads under load, alternating corrupt and good artifacts.

Why: a reload is the riskiest moment of a serving process (TF Serving/KServe promise
zero-downtime version swaps). Every other reload here points `champion` at a version one
of whose files was rewritten after registration: the integrity check must refuse it (409)
and the old model must keep serving. The next reload follows the restored file and must
swap. Meanwhile a client sends 200 req/s; every request must succeed, and each response's
model version must be one that was serving at some moment while that request was open.
"""

from __future__ import annotations

import time

import httpx

from reliability.common import Budget, Home, Result, copy_home, make_keys, scratch, serving
from reliability.load import Background, customers, predict_requests


def run(home: Home, budget: Budget) -> Result:
    """Reload `budget.reloads` times under `budget.reload_rps`; count failures and versions."""
    from churnops.registry import load_model
    from churnops.registry.promotion import rollback

    started = time.monotonic()
    work = scratch("reload")
    own = copy_home(home, work / "home")
    settings = own.settings()
    keys = make_keys(settings, "reload")
    folders = {v: load_model(settings, version=v).files for v in own.versions}
    if not all(str(f).startswith(str(own.path.resolve())) for f in folders.values()):
        raise RuntimeError(f"the home copy still reads the original's files: {folders}")
    serving_version = own.versions[0]
    swaps: list[tuple[float, float, str]] = []  # (reload sent, answered, new version)
    outcomes: list[str] = []
    wrong: list[str] = []
    with serving(own, work / "server.log") as server:
        headers = {"Authorization": f"Bearer {keys['scorer']}"}
        admin = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=120
        )
        load = Background(
            server.url, headers, predict_requests(customers()), rate=budget.reload_rps
        )
        with load:
            time.sleep(2.0)
            for i in range(budget.reloads):
                corrupt = i % 2 == 0
                target = next(v for v in own.versions if v != serving_version)
                path = folders[target] / "contract.json"
                original = path.read_bytes()
                if corrupt:
                    path.write_bytes(original + b" ")  # same JSON, another SHA-256
                    rollback(settings, to_version=target)
                sent = time.perf_counter()
                r = admin.post("/v1/admin/reload")
                answered = time.perf_counter()
                if corrupt:
                    path.write_bytes(original)
                    if r.status_code != 409:
                        wrong.append(f"reload {i} (corrupt v{target}): {r.status_code}")
                    outcomes.append(f"409 v{serving_version} kept" if r.status_code == 409 else
                                    f"{r.status_code}")  # fmt: skip
                else:
                    new = str(r.json().get("new_version")) if r.status_code == 200 else None
                    if r.status_code != 200 or new != target:
                        wrong.append(f"reload {i} (good v{target}): {r.status_code} {r.text[:200]}")
                    if new:
                        swaps.append((sent, answered, new))
                        serving_version = new
                    outcomes.append(f"{r.status_code} -> v{new}")
                now = admin.get("/v1/model").json().get("version")
                if str(now) != serving_version:
                    wrong.append(
                        f"after reload {i}: /v1/model says v{now}, expected v{serving_version}"
                    )
                time.sleep(0.5)
            time.sleep(1.0)
        result = load.finish()
        admin.close()
    # Which versions may a request see? The one serving when it started, plus any version
    # a reload installed while it was open.
    first = own.versions[0]
    bad_versions = 0
    for s in result.samples:
        if s.version is None:
            continue
        start, end = result.t0 + s.start, result.t0 + s.start + s.latency
        before = [v for (_, done, v) in swaps if done <= start]
        allowed = {before[-1] if before else first}
        allowed |= {v for (sent, done, v) in swaps if sent <= end and done >= start}
        if s.version not in allowed:
            bad_versions += 1
    failed = result.failed
    passed = not failed and bad_versions == 0 and not wrong
    seen = sorted({s.version for s in result.samples if s.version})
    kinds = sorted({f"{s.status} {s.error or ''}".strip() for s in failed})
    detail = (
        f"{len(result.samples):,} requests at {result.rate:.0f} req/s; versions seen "
        f"{', '.join('v' + v for v in seen)}; reloads: {', '.join(outcomes)}"
        + (f"; wrong: {'; '.join(wrong[:5])}" if wrong else "")
        + (f"; failed: {', '.join(kinds)[:300]}" if failed else "")
    )
    return Result(
        "champion reloads",
        f"{budget.reloads} reloads ({budget.reloads // 2} corrupt → 409): {len(failed)} failed "
        f"requests, {bad_versions} responses from an unexpected version, "
        f"{len(wrong)} wrong reload answer(s)",
        f"0 failed of ~{budget.reload_rps:.0f} req/s; only old/new versions; corrupt → 409",
        passed,
        detail,
        time.monotonic() - started,
    )
