"""Train on Spark and register: what ``churnops train --engine spark`` runs.

Registration is the local one (:func:`churnops.registry.log_training`): the same MLflow
run, tags, metrics, artifact files and aliases, so ``churnops models`` lists the version
and the API, batch scoring and monitoring load it unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.progress import ProgressFn
from churnops.training.spark.run import train_spark


def train_and_register_spark(
    data: str | None,
    settings: Settings,
    *,
    target: str,
    id_column: str | None = None,
    contract: DataContract | None = None,
    positive: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    table: str | None = None,
    master: str = "local[2]",
    metrics_out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train on Spark, log and register the model; return the run summary.

    The summary has the keys of a local training's (``churnops train --json``), plus
    ``engine`` and ``master``.
    """
    from churnops.stages import check_artifact_store, registered_summary

    check_artifact_store(settings)
    started = time.perf_counter()
    result = train_spark(
        data,
        settings,
        target=target,
        id_column=id_column,
        contract=contract,
        positive=positive,
        families=families,
        trials=trials,
        table=table,
        master=master,
        progress=progress,
    )
    summary = registered_summary(
        result,
        settings,
        source=data or f"spark-table:{table}",
        started=started,
        metrics_out=metrics_out,
        progress=progress,
    )
    return summary | {"engine": "spark", "master": master}
