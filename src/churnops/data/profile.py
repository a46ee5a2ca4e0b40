"""What a typical customer who stayed looks like, column by column, for comparisons.

The customer page shows each feature value beside the typical value among non-churners of
the champion's training data: the median for numbers, the most common level (with its
share) for categories and flags. Derived from the contract's columns, never from names.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from churnops.data.contract import DataContract


def typical_values(frame: pd.DataFrame, contract: DataContract) -> dict[str, dict[str, Any]]:
    """Return per feature ``{"typical": value, "share": float | None}`` among non-churners.

    Rows whose label is the positive one (or unknown) are left out; a feature missing
    from ``frame`` is left out of the result.
    """
    stayed = frame
    if contract.target in frame.columns:
        stayed = frame[contract.target_series(frame[contract.target]) == 0]
    out: dict[str, dict[str, Any]] = {}
    for spec in contract.features:
        if spec.name not in stayed.columns:
            continue
        values = stayed[spec.name].dropna()
        if values.empty:
            continue
        if spec.kind == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").dropna()
            if numbers.empty:
                continue
            out[spec.name] = {"typical": float(numbers.median()), "share": None}
        else:
            counts = values.astype(str).value_counts()
            out[spec.name] = {
                "typical": counts.index[0],
                "share": round(float(counts.iloc[0] / counts.sum()), 4),
            }
    return out
