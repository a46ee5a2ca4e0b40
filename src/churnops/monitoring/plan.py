"""What a monitoring run watches, derived from the data and the champion, never from the demo.

Four settings name columns or numbers that only make sense for one table: the key
features, the segment columns, the time column and the F1 floor. Each defaults to None,
meaning "derive it":

- key features: the champion's top ``key_features_top`` features by mean |SHAP| (the
  importance its training run logged);
- segments: the contract's categorical (at most 12 levels) and boolean features — the
  same columns batch scoring stores as segments;
- time column: the contract's datetime column, else a datetime column of the monitored
  table, else none (the whole batch is one window, dated by the run);
- F1 floor: the champion's holdout F1 minus ``f1_max_drop``.

A configured name the data does not have is a warning in the output, the JSON and the
store — never silence. Every derived value says where it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from churnops.config import Settings
from churnops.data.contract import DataContract, is_datetime
from churnops.features.segments import segment_key


@dataclass(frozen=True)
class MonitoringPlan:
    """The columns and floors one run uses, each with where it came from."""

    key_features: list[str]
    key_features_from: str
    segment_columns: list[str]
    segments_from: str
    date_column: str | None
    date_from: str
    f1_floor: float | None
    f1_floor_from: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (the ``derived`` block of ``monitor --json``)."""
        out = asdict(self)
        out.pop("warnings")
        return out


def plan_monitoring(
    settings: Settings,
    contract: DataContract,
    *,
    holdout: dict[str, float],
    importance: dict[str, float],
    current: pd.DataFrame,
) -> MonitoringPlan:
    """Resolve the run's key features, segments, time column and F1 floor."""
    warnings: list[str] = []
    key, key_from = _key_features(settings, contract, importance, warnings)
    segments = segment_key(contract, settings.segment_columns, setting="segment_columns")
    warnings += segments.warnings
    date_column, date_from = _date_column(settings, contract, current, warnings)
    floor, floor_from = f1_floor(settings, holdout)
    return MonitoringPlan(
        key_features=key,
        key_features_from=key_from,
        segment_columns=segments.columns,
        segments_from="configured" if settings.segment_columns is not None else "contract",
        date_column=date_column,
        date_from=date_from,
        f1_floor=floor,
        f1_floor_from=floor_from,
        warnings=warnings,
    )


def f1_floor(settings: Settings, holdout: dict[str, float]) -> tuple[float | None, str]:
    """Return the F1 below which to retrain, and how it was set.

    An absolute ``f1_floor`` wins; otherwise the floor is the champion's holdout F1 less
    ``f1_max_drop`` (None when the champion logged no holdout F1: no performance trigger).
    """
    if settings.f1_floor is not None:
        return settings.f1_floor, "configured f1_floor"
    baseline = holdout.get("f1")
    if baseline is None:
        return None, "no holdout F1 logged with the champion: no F1 trigger"
    floor = round(max(baseline - settings.f1_max_drop, 0.0), 4)
    return floor, f"champion's holdout F1 {baseline:.3f} - f1_max_drop {settings.f1_max_drop}"


def _key_features(
    settings: Settings,
    contract: DataContract,
    importance: dict[str, float],
    warnings: list[str],
) -> tuple[list[str], str]:
    features = contract.feature_names
    if settings.key_features is not None:
        missing = [n for n in settings.key_features if n not in features]
        if missing:
            warnings.append(
                f"key_features: {', '.join(map(repr, missing))} not among the champion's "
                "features; ignored."
            )
        return [n for n in settings.key_features if n in features], "configured"
    ranked = [n for n in sorted(importance, key=lambda n: -importance[n]) if n in features]
    top = settings.key_features_top
    if not ranked:
        return [], "none: the champion's run logged no feature importance"
    return ranked[:top], f"champion's top {top} by mean |SHAP|"


def _date_column(
    settings: Settings, contract: DataContract, current: pd.DataFrame, warnings: list[str]
) -> tuple[str | None, str]:
    if settings.date_column is not None:
        if settings.date_column in current.columns:
            return settings.date_column, "configured"
        warnings.append(
            f"date_column: {settings.date_column!r} is not a column of the monitored table; "
            "the whole batch is one window."
        )
        return None, "configured column missing: one window"
    if contract.time_column and contract.time_column in current.columns:
        return contract.time_column, "contract's datetime column"
    known = {c.name for c in contract.columns if c.role != "time"}
    for name in current.columns:
        if name not in known and is_datetime(current[name]):
            return str(name), "datetime column of the monitored table"
    return None, "no datetime column: one window, dated by the run"
