"""Six weeks in production, simulated: gradual drift, late labels, triggers, retraining.

What ``make run`` shows after training the first champion. Every week a new batch of
synthetic customers arrives, a little more shifted than the last (higher prices, more
month-to-month contracts, shorter tenure). The champion scores it; the monitor compares it
with the champion's training data; labels for a week arrive one week later, so each week's
check sees the previous week with labels (realised metrics) and the current week without
(label-free estimate). When a trigger fires, a challenger is trained on the labelled weeks
so far and the promotion gate decides; the new champion's training data becomes the new
reference.

The weeks run the closed loop's own steps (:mod:`churnops.orchestration.steps`: monitor,
train, promotion gate); what is theirs is the scenario — the data, the late labels and
the team's policy of when to retrain.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from churnops.config import Settings
from churnops.orchestration import steps
from churnops.progress import ProgressFn

MIN_TRAINING_ROWS = 1000


def simulate_weeks(
    settings: Settings,
    *,
    weeks: int = 6,
    rows_per_week: int = 2000,
    max_drift: float = 1.0,
    start: date = date(2026, 1, 5),
    seed: int = 100,
    trials: int = 2,
    families: tuple[str, ...] = ("logistic",),
    cooldown_weeks: int = 2,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run the weekly loop ``weeks`` times and return what happened each week.

    The champion must exist and accept the demo columns (``run_demo`` trains it).
    Retraining uses a small budget (``families``, ``trials``, 3 CV folds) and waits
    ``cooldown_weeks`` after a retrain, as a team would: a kept challenger one week does not
    mean trying again the next with one more week of labels.
    """
    from churnops import registry
    from churnops.data.demo import DEMO_ID, DEMO_TARGET
    from churnops.data.synth import DATE_COLUMN, generate_chunks

    settings = settings.model_copy(update={"date_column": DATE_COLUMN, "window": "W"})
    retrain_settings = settings.model_copy(
        update={"families": list(families), "cv_folds": min(settings.cv_folds, 3)}
    )
    last_retrain = -cooldown_weeks
    labelled: list[pd.DataFrame] = []  # weeks whose labels have arrived
    previous: pd.DataFrame | None = None
    log: list[dict[str, Any]] = []
    for week in range(1, weeks + 1):
        drift = max_drift * week / weeks
        monday = start + timedelta(weeks=week - 1)
        batch = pd.concat(
            generate_chunks(
                rows_per_week, seed=seed + week, drift=drift, start_date=monday, days=7
            ),
            ignore_index=True,
        )
        # Last week's labels arrive now; this week's customers are still unlabelled.
        current = batch.drop(columns=[DEMO_TARGET])
        labels = None
        if previous is not None:
            labelled.append(previous)
            current = pd.concat([previous.drop(columns=[DEMO_TARGET]), current])
            labels = previous[[DEMO_ID, DEMO_TARGET]]
        champion = registry.load_model(settings, alias=registry.CHAMPION)
        flagged = int(champion.model.predict_frame(batch)["churn"].sum())
        week_source = steps.Source(
            f"week {week} ({monday.isoformat()})", current.reset_index(drop=True)
        )
        result = steps.monitor(settings, week_source, champion=champion, labels=labels)
        entry: dict[str, Any] = {
            "week": week,
            "drift": round(drift, 3),
            "rows": rows_per_week,
            "flagged": flagged,
            "champion_version": champion.version.version,
            "drift_share": round(result.drift.drift_share, 3),
            "drifted_features": result.drift.drifted_features,
            "prediction_psi": round(result.prediction["psi"], 3),
            "estimated_f1": _round(result.estimated["f1"]),
            "realised_f1": _round((result.realised or {}).get("f1")),
            "retrain": result.decision.retrain,
            "reasons": result.decision.reasons,
            "action": None,
        }
        training_rows = sum(len(f) for f in labelled)
        if result.decision.retrain and week - last_retrain < cooldown_weeks:
            entry["action"] = f"retrain wanted; cooling down (last retrain in week {last_retrain})"
        elif result.decision.retrain and training_rows >= MIN_TRAINING_ROWS:
            last_retrain = week
            recent = steps.Source(
                f"simulated weeks 1-{week - 1}",
                pd.concat(labelled, ignore_index=True).drop(columns=[DATE_COLUMN]),
            )
            trained = steps.train_challenger(
                retrain_settings, recent, champion, trials=trials, progress=progress
            )
            # The trigger watched F1 at the decision threshold (ROC-AUC barely moves under
            # covariate shift), so the gate compares the same thing on the same recent data.
            decision = steps.promotion_gate(settings, metric="f1")
            entry["action"] = (
                f"retrained v{trained['model_version']} on {training_rows:,} labelled rows: "
                f"{decision['decision']} ({decision['reason']})"
            )
        elif result.decision.retrain:
            entry["action"] = f"retrain wanted, but only {training_rows:,} labelled rows yet"
        log.append(entry)
        previous = batch
    return {
        "weeks": log,
        "retrained": sum(1 for w in log if w["action"] and w["action"].startswith("retrained")),
        "final_champion": registry.get_version(settings, alias=registry.CHAMPION).version,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
