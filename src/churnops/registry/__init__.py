"""MLflow tracking and model registry: log, register, load, promote, roll back.

Nobody outside this package opens MLflow: code that needs a model asks here.
"""

from churnops.registry.gate import GateResult, contract_differences, release_gate
from churnops.registry.local import load_last_good, save_last_good
from churnops.registry.models import (
    CHALLENGER,
    CHAMPION,
    LoadedModel,
    RegisteredVersion,
    get_version,
    list_versions,
    load_model,
    load_run_frame,
    log_training,
    model_uri,
    spark_udf,
)
from churnops.registry.monitoring import log_monitoring_report, monitoring_artifacts
from churnops.registry.promotion import (
    PromotionResult,
    RollbackResult,
    list_events,
    promote,
    rollback,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GateResult",
    "LoadedModel",
    "PromotionResult",
    "RegisteredVersion",
    "RollbackResult",
    "contract_differences",
    "get_version",
    "list_events",
    "list_versions",
    "load_last_good",
    "load_model",
    "load_run_frame",
    "log_monitoring_report",
    "log_training",
    "model_uri",
    "monitoring_artifacts",
    "promote",
    "release_gate",
    "rollback",
    "save_last_good",
    "spark_udf",
]
