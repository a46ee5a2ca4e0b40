"""The demo (what ``make run`` runs): demo data -> validate -> train -> promote -> summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from churnops.config import Settings
from churnops.progress import ProgressFn


def run_demo(
    settings: Settings,
    *,
    data_out: Path = Path("data/telco.csv"),
    trials: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run the end-to-end demo on the Telco data and return what each step produced."""
    from churnops import registry
    from churnops.batch import high_risk, score
    from churnops.data.contract import infer_contract
    from churnops.data.demo import DEMO_ID, DEMO_TARGET, load_demo
    from churnops.data.sources import write_table
    from churnops.data.validation import validate
    from churnops.monitoring.simulation import simulate_weeks
    from churnops.stages import train_and_register

    started = time.perf_counter()
    df = load_demo()
    write_table(df, data_out)
    contract = infer_contract(df, DEMO_TARGET, DEMO_ID)
    report = validate(df, contract).report
    training = train_and_register(
        df,
        settings,
        target=DEMO_TARGET,
        id_column=DEMO_ID,
        contract=contract,
        trials=trials,
        source=str(data_out),
        metrics_out=settings.ensure_home() / "metrics.json",
        progress=progress,
    )
    promotion = registry.promote(settings)
    champion = registry.get_version(settings, alias=registry.CHAMPION)
    scoring = score(settings, data_out)  # the demo customers, into the SQLite store
    at_risk = high_risk(settings, top=10)
    production = simulate_weeks(settings, trials=min(trials or settings.trials, 2))
    return {
        "data": {"path": str(data_out), "rows": len(df), "columns": df.shape[1]},
        "validation": {
            "ok": report.ok,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
        },
        "training": training,
        "promotion": promotion.to_dict(),
        "champion_version": champion.version,
        "production": production,
        "scoring": scoring,
        "high_risk": at_risk,
        "tracking_uri": settings.resolved_tracking_uri,
        "seconds": round(time.perf_counter() - started, 2),
    }
