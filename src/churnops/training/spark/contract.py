"""The data contract of a Spark table, from Spark aggregations instead of a pandas frame.

:func:`churnops.data.contract.infer_contract` needs the table in memory; here every
number comes from a few aggregate jobs, and only small answers reach the driver:

* numeric columns (and text columns whose cells parse as numbers): count, min, max, mean,
  standard deviation and whether all are whole, in one pass; quantiles are *exact*, as
  pandas computes them (linear interpolation between order statistics): a first pass finds
  approximate quantiles, a second counts the rows below a narrow bracket around each and
  the distinct values inside it, and the order statistics are read from those counts;
* other columns: their distinct values with counts and first row (a group-by), judged on
  the driver by the same helpers the local inference uses (text cleaning, boolean levels,
  labels), and weighted by the counts.

The result equals the local contract on the same table except ``digest`` and
``created_at`` (the digest hashes rows with Spark, not pandas), and ``mean``/``std`` to
the last bits (Spark sums in another order).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from churnops.data.contract import (
    BLANK_STRINGS,
    MAX_CATEGORIES,
    NUMERIC_TEXT_SHARE,
    QUANTILES,
    ColumnSpec,
    DataContract,
    _boolean_levels,
    _finite,
    _plain,
    _target_labels,
    is_datetime,
    label_key,
)
from churnops.data.rules import NUMBER_TEXT
from churnops.errors import ContractError

APPROX_ACCURACY = 100_000  # percentile_approx: rank error at most rows / this
BRACKET = 3.0 / APPROX_ACCURACY  # quantile margin either side of each approximate quantile
MIN_BRACKET_ROWS = 10  # rows a bracket must hold; smaller columns are bracketed whole
DISTINCT_LIMIT = 100_000  # distinct values a column may send to the driver
ORDER = "_churnops_pos"  # the row-order column the reader adds (see source.py)

_DTYPES = {
    "LongType": "int64",
    "IntegerType": "int32",
    "ShortType": "int16",
    "ByteType": "int8",
    "DoubleType": "float64",
    "FloatType": "float32",
    "BooleanType": "bool",
}
_NUMBER_TYPES = ("LongType", "IntegerType", "ShortType", "ByteType", "DoubleType", "FloatType")
_TIME_TYPES = ("DateType", "TimestampType", "TimestampNTZType")


def spark_contract(
    frame: Any, target: str, id_column: str | None = None, positive: str | None = None
) -> DataContract:
    """Infer the contract of Spark DataFrame ``frame`` (with the reader's order column).

    Args:
        frame: the table, with :data:`ORDER` giving each row's position.
        target: the churn label column.
        id_column: the customer id column, if any.
        positive: the positive label; guessed from yes/true/1/churned when omitted.
    """
    from pyspark.sql import functions as F

    names = [c for c in frame.columns if c != ORDER]
    if target not in names:
        raise ContractError(
            f"Target column {target!r} not found; columns are: {', '.join(names)}.",
            {"column": target},
        )
    if id_column is not None and id_column not in names:
        raise ContractError(f"Id column {id_column!r} not found.", {"column": id_column})
    types = {f.name: type(f.dataType).__name__ for f in frame.schema.fields}
    numbers = {n: _number(F, n, types[n]) for n in names if n not in (target, id_column)}
    numbers = {n: e for n, e in numbers.items() if e is not None}
    first = _first_pass(frame, names, numbers, types)
    rows = int(first["rows"])
    if rows < 10:
        raise ContractError(f"Need at least 10 rows to infer a contract, got {rows}.")
    numeric = [
        n
        for n in numbers
        if types[n] in _NUMBER_TYPES
        or (
            first[f"{n}.nonblank"] > 0
            and first[f"{n}.count"] >= NUMERIC_TEXT_SHARE * first[f"{n}.nonblank"]
        )
    ]
    second = _second_pass(frame, {n: numbers[n] for n in numeric}, first)
    distinct = _distinct_values(frame, target, id_column, names, numeric, second, first, types)

    target_values = distinct[target]
    labels, positive_label = _target_labels(_series(target_values, types[target]), positive)
    columns: list[ColumnSpec] = []
    positive_rows = 0
    for name in names:
        dtype = _dtype(types[name], first[f"{name}.nulls"] > 0)
        if name == target:
            present = target_values.dropna(subset=["value"])
            keys = present["value"].map(label_key)
            positive_rows = int(present.loc[keys == label_key(positive_label), "count"].sum())
            freq = _frequencies(present["value"].astype(str), present)
            missing = first[f"{name}.nulls"] / rows
            columns.append(
                ColumnSpec(
                    name=name,
                    role="target",
                    kind="categorical",
                    dtype=dtype,
                    missing_rate=float(missing),
                    categories=freq,
                )
            )
        elif name == id_column:
            columns.append(
                ColumnSpec(
                    name=name,
                    role="id",
                    kind="categorical",
                    dtype=dtype,
                    missing_rate=float(first[f"{name}.nulls"] / rows),
                )
            )
        elif types[name] in _TIME_TYPES or (name not in numeric and _dates(distinct[name])):
            missing = first[f"{name}.nulls"] / rows
            columns.append(
                ColumnSpec(
                    name=name,
                    role="time",
                    kind="datetime",
                    dtype=dtype,
                    missing_rate=float(missing),
                    note="dates: when a row was observed (monitoring's time windows), not a "
                    "feature",
                )
            )
        else:
            base = {"name": name, "dtype": dtype}
            columns.append(
                _column(base, rows, first, second.get(name), distinct.get(name), types[name])
            )
    return DataContract(
        target=target,
        id=id_column,
        positive_label=positive_label,
        labels=labels,
        positive_rate=float(positive_rows / rows),
        rows=rows,
        digest=_digest(first["digest"], rows, names),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        columns=columns,
    )


def table_digest(frame: Any) -> str:
    """Return a content digest of the table: Spark's 64-bit row hashes, summed, with its shape.

    Row order does not change it (unlike the local ``frame_digest``, which hashes with
    pandas: the two engines' digests of one table differ).
    """
    from pyspark.sql import functions as F

    names = [c for c in frame.columns if c != ORDER]
    found = frame.agg(F.count(F.lit(1)).alias("rows"), _row_hashes(names).alias("d")).first()
    return _digest(found["d"], int(found["rows"]), names)


def _row_hashes(names: list[str]) -> Any:
    from pyspark.sql import functions as F

    hashed = F.xxhash64(*[F.col(f"`{n}`") for n in names]).cast("decimal(38,0)")
    return F.sum(hashed).cast("string")


def _digest(hashes: str | None, rows: int, names: list[str]) -> str:
    return hashlib.sha256(f"{hashes}|{rows}|{names}".encode()).hexdigest()[:16]


def _number(F: Any, name: str, kind: str) -> Any:
    """Return ``name`` as a double column (NaN as null), parsed from text, or None."""
    column = F.col(f"`{name}`")
    if kind in _NUMBER_TYPES:
        value = column.cast("double")
        return F.when(~F.isnan(value), value)
    if kind == "StringType":
        text = F.trim(column)
        blank = text.isNull() | F.lower(text).isin(*BLANK_STRINGS)
        # Only text that reads as a number is cast: a failed cast costs the JVM an
        # exception per cell (most of a 1M-row first pass went there), and the pattern is
        # the rules' own (numbers written as text).
        value = F.when(~blank & text.rlike(f"^{NUMBER_TEXT.pattern}$"), text.cast("double"))
        return F.when(~F.isnan(value) & ~F.abs(value).eqNullSafe(float("inf")), value)
    return None


def _first_pass(frame: Any, names: list[str], numbers: dict[str, Any], types: dict) -> dict:
    """One aggregate job: rows, nulls per column, numeric statistics, approximate quantiles."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("rows"), _row_hashes(names).alias("digest")]
    for name in names:
        column = F.col(f"`{name}`")
        aggs.append(F.sum(column.isNull().cast("long")).alias(f"{name}.nulls"))
        aggs.append(F.approx_count_distinct(column).alias(f"{name}.distinct"))
    for name, value in numbers.items():
        aggs += [
            F.count(value).alias(f"{name}.count"),
            F.min(value).alias(f"{name}.min"),
            F.max(value).alias(f"{name}.max"),
            F.avg(value).alias(f"{name}.mean"),
            F.stddev_samp(value).alias(f"{name}.std"),
            F.sum((value != F.floor(value)).cast("long")).alias(f"{name}.fraction"),
            F.percentile_approx(value, _brackets(), APPROX_ACCURACY).alias(f"{name}.approx"),
        ]
        if types[name] == "StringType":
            text = F.trim(F.col(f"`{name}`"))
            blank = text.isNull() | F.lower(text).isin(*BLANK_STRINGS)
            aggs.append(F.sum((~blank).cast("long")).alias(f"{name}.nonblank"))
        else:
            aggs.append(F.count(value).alias(f"{name}.nonblank"))
    return frame.agg(*aggs).first().asDict()


def _brackets() -> list[float]:
    """Return the approximate quantiles asked for: a margin either side of each quantile."""
    return [min(max(q + d, 0.0), 1.0) for q in QUANTILES for d in (-BRACKET, BRACKET)]


def _second_pass(frame: Any, numbers: dict[str, Any], first: dict) -> dict[str, dict]:
    """Exact quantiles and the two-value check of each numeric column (two small jobs)."""
    from pyspark.sql import functions as F

    if not numbers:
        return {}
    aggs, entries = [], []
    for name, value in numbers.items():
        approx = first[f"{name}.approx"] or []
        lo, hi = first[f"{name}.min"], first[f"{name}.max"]
        aggs.append(F.sum(((value == lo) | (value == hi)).cast("long")).alias(f"{name}.ends"))
        small = first[f"{name}.count"] * BRACKET < MIN_BRACKET_ROWS
        for i in range(len(QUANTILES)):
            # A small column is read whole: its brackets would be a row or two wide.
            low, high = (lo, hi) if small else (approx[2 * i], approx[2 * i + 1])
            aggs.append(F.sum((value < low).cast("long")).alias(f"{name}.{i}.below"))
            inside = F.when((value >= low) & (value <= high), value)
            entries.append(F.struct(F.lit(f"{name}.{i}").alias("key"), inside.alias("value")))
    counts = frame.agg(*aggs).first().asDict()
    bracketed = F.filter(F.array(*entries), lambda e: e["value"].isNotNull())
    inside = (
        frame.select(F.explode(bracketed).alias("e")).groupBy("e.key", "e.value").count().toPandas()
    )
    found: dict[str, dict] = {}
    for name in numbers:
        n = int(first[f"{name}.count"])
        quantiles = {}
        for i, q in enumerate(QUANTILES):
            part = inside[inside["key"] == f"{name}.{i}"].sort_values("value")
            below = int(counts[f"{name}.{i}.below"])
            quantiles[str(q)] = _exact_quantile(
                q, n, below, part["value"].to_numpy(), part["count"].to_numpy()
            )
        found[name] = {"quantiles": quantiles, "ends": int(counts[f"{name}.ends"] or 0)}
    return found


def _exact_quantile(q: float, n: int, below: int, values: np.ndarray, counts: np.ndarray) -> float:
    """Return pandas' linear quantile from order statistics inside a bracket.

    ``below`` rows lie under the bracket, whose distinct ``values`` (sorted) hold
    ``counts`` rows. pandas passes ``q * 100`` to ``np.percentile``, which divides again
    and interpolates between the order statistics around ``(n - 1) * q``; the same
    arithmetic (numpy's own ``_lerp``, through ``np.quantile`` of the two) gives the
    same bits.
    """
    if n == 0:
        return math.nan
    fraction = np.true_divide(np.float64(q) * 100.0, 100)
    virtual = (n - 1) * fraction
    previous = int(np.floor(virtual))
    gamma = virtual - previous
    ends = np.cumsum(counts)

    def order_statistic(k: int) -> float:
        at = int(np.searchsorted(ends, k - below, side="right"))
        if k < below or at >= len(values):
            raise ContractError(  # the approximate bracket missed: not expected
                f"could not bracket quantile {q} exactly; report this with the table's size"
            )
        return float(values[at])

    pair = np.array([order_statistic(previous), order_statistic(min(previous + 1, n - 1))])
    return float(np.quantile(pair, gamma))


def _distinct_values(
    frame: Any,
    target: str,
    id_column: str | None,
    names: list[str],
    numeric: list[str],
    second: dict[str, dict],
    first: dict,
    types: dict[str, str],
) -> dict[str, pd.DataFrame]:
    """Distinct values, counts and first row of the target and each non-numeric feature.

    Numeric columns with at most two values come too: they may be booleans.
    """
    from pyspark.sql import functions as F

    wanted = [target] + [
        n
        for n in names
        if n not in (target, id_column)
        and types[n] not in _TIME_TYPES
        and (n not in numeric or second[n]["ends"] == first[f"{n}.count"])
    ]
    few = [n for n in wanted if (first[f"{n}.distinct"] or 0) <= DISTINCT_LIMIT]
    found = {n: _typed(group, types[n]) for n, group in _grouped(frame, few).items()}
    for name in wanted:
        if name in few:
            continue
        # An id or free text: its most frequent values only, and how many there are.
        column = F.col(f"`{name}`")
        grouped = frame.groupBy(column.alias("value")).agg(
            F.count(F.lit(1)).alias("count"), F.min(ORDER).alias("first")
        )
        top = grouped.orderBy(F.desc("count"), "first").limit(MAX_CATEGORIES).toPandas()
        top.attrs["distinct"] = frame.select(column).distinct().count()
        found[name] = top
    return found


def _grouped(frame: Any, names: list[str]) -> dict[str, pd.DataFrame]:
    """Distinct values (as text), counts and first row of several columns in one job."""
    from pyspark.sql import functions as F

    if not names:
        return {}
    entries = [
        F.struct(F.lit(n).alias("key"), F.col(f"`{n}`").cast("string").alias("value"))
        for n in names
    ]
    rows = frame.select(F.explode(F.array(*entries)).alias("e"), ORDER)
    grouped = rows.groupBy("e.key", "e.value").agg(
        F.count(F.lit(1)).alias("count"), F.min(ORDER).alias("first")
    )
    table = grouped.toPandas().sort_values("first", kind="stable", ignore_index=True)
    return {n: table[table["key"] == n].drop(columns="key").reset_index(drop=True) for n in names}


def _typed(values: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Turn distinct values sent as text back into the column's Python values."""
    parse = {"BooleanType": lambda v: v == "true"}.get(kind)
    if parse is None and kind in _NUMBER_TYPES:
        parse = float if kind in ("DoubleType", "FloatType") else int
    if parse is not None:
        values["value"] = [None if v is None else parse(v) for v in values["value"]]
    return values


def _column(
    base: dict[str, Any],
    rows: int,
    first: dict,
    numbers: dict | None,
    values: pd.DataFrame | None,
    kind: str,
) -> ColumnSpec:
    """Build a feature column's spec as :func:`infer_column` would from the whole column."""
    if values is not None and "distinct" in values.attrs:
        return _many_values(base, rows, first, values)
    if numbers is not None:
        present = int(first[f"{base['name']}.count"])
        base = {**base, "missing_rate": float(1.0 - present / max(rows, 1))}
        if numbers["ends"] == present and values is not None:
            spec = _few_values(base, values, kind, numeric=True)
            if spec is not None:
                return spec
        if (
            first[f"{base['name']}.min"] is None
            or first[f"{base['name']}.min"] == first[f"{base['name']}.max"]
        ):
            return ColumnSpec(role="ignored", kind="categorical", note="constant column", **base)
        return _numeric(base, first, numbers)
    assert values is not None
    raw = _series(values, kind)
    text = raw.astype("string").str.strip()
    text = text.mask(text.str.lower().isin(BLANK_STRINGS))
    present = values.assign(text=text).dropna(subset=["text"])
    base = {**base, "missing_rate": float(1.0 - present["count"].sum() / max(rows, 1))}
    spec = _few_values(base, values, kind, numeric=False)
    if spec is not None:
        return spec
    freq = _frequencies(present["text"], present, limit=None)
    if len(freq) > 0.5 * rows and len(freq) > 50:
        return ColumnSpec(
            role="ignored", kind="categorical", note="unique per row (an id or free text)", **base
        )
    shown = dict(list(freq.items())[:MAX_CATEGORIES])
    return ColumnSpec(
        role="feature",
        kind="categorical",
        categories={k: round(v, 6) for k, v in shown.items()},
        open_categories=len(freq) > MAX_CATEGORIES,
        **base,
    )


def _few_values(
    base: dict[str, Any], values: pd.DataFrame, kind: str, *, numeric: bool
) -> ColumnSpec | None:
    """Return the spec of a column with at most two distinct values (None: more)."""
    raw = _series(values, kind)
    known = values[raw.notna().to_numpy()]
    if numeric:
        keys = pd.to_numeric(raw[raw.notna()], errors="coerce")
    else:
        text = raw.astype("string").str.strip()
        keys = text.mask(text.str.lower().isin(BLANK_STRINGS)).dropna()
    distinct = keys.dropna().unique()
    if len(distinct) > 2:
        return None
    if len(distinct) <= 1:
        return ColumnSpec(role="ignored", kind="categorical", note="constant column", **base)
    levels = _boolean_levels(raw.dropna().unique(), distinct)
    if levels is None:
        return None
    freq = _frequencies(raw.dropna().map(label_key), known)
    return ColumnSpec(role="feature", kind="boolean", levels=levels, categories=freq, **base)


def _numeric(base: dict[str, Any], first: dict, numbers: dict) -> ColumnSpec:
    """The numeric spec from Spark's statistics (the bounds as the local inference sets them)."""
    name = base["name"]
    lo, hi = float(first[f"{name}.min"]), float(first[f"{name}.max"])
    span = hi - lo
    return ColumnSpec(
        role="feature",
        kind="numeric",
        integer=int(first[f"{name}.fraction"]) == 0,
        min=lo,
        max=hi,
        lower=0.0 if lo >= 0 else lo - span,
        upper=hi + span,
        mean=_finite(first[f"{name}.mean"]),
        std=_finite(first[f"{name}.std"]) if first[f"{name}.std"] is not None else None,
        quantiles=numbers["quantiles"],
        **base,
    )


def _many_values(base: dict[str, Any], rows: int, first: dict, values: pd.DataFrame) -> ColumnSpec:
    """A column with more distinct values than the driver takes: unique per row, or open."""
    present = rows - int(first[f"{base['name']}.nulls"])
    base = {**base, "missing_rate": float(1.0 - present / max(rows, 1))}
    if values.attrs["distinct"] > 0.5 * rows:
        return ColumnSpec(
            role="ignored", kind="categorical", note="unique per row (an id or free text)", **base
        )
    top = values.sort_values(["count", "first"], ascending=[False, True]).head(MAX_CATEGORIES)
    freq = {
        str(v).strip(): round(c / present, 6)
        for v, c in zip(top["value"], top["count"], strict=True)
    }
    return ColumnSpec(
        role="feature", kind="categorical", categories=freq, open_categories=True, **base
    )


def _frequencies(
    keys: pd.Series, counted: pd.DataFrame, limit: int | None = None
) -> dict[str, float]:
    """Share of rows per key, most frequent first (ties: first seen), like ``value_counts``."""
    table = pd.DataFrame({"key": keys.astype(str).to_numpy(), "count": counted["count"].to_numpy()})
    table["first"] = counted["first"].to_numpy()
    grouped = table.groupby("key", sort=False).agg(count=("count", "sum"), first=("first", "min"))
    grouped = grouped.sort_values(["count", "first"], ascending=[False, True])
    total = grouped["count"].sum()
    return {str(k): float(c / total) for k, c in grouped["count"].items()}


def _series(values: pd.DataFrame, kind: str) -> pd.Series:
    """Return the distinct values as pandas would hold the column's cells."""
    column = values["value"]
    if kind in _NUMBER_TYPES and column.notna().all():
        return column.astype(_DTYPES[kind])
    return column.map(_plain).astype(object).where(column.notna(), None)


def _dates(values: pd.DataFrame) -> bool:
    """Return whether a text column holds ISO dates, judged on its first 1,000 values."""
    present = values.dropna(subset=["value"]).head(1000)
    return is_datetime(present["value"].astype(object))


def _dtype(kind: str, has_nulls: bool) -> str:
    """Return the pandas dtype name the column would have in a frame read from Parquet."""
    if kind in _NUMBER_TYPES[:4] and has_nulls:
        return "float64"
    if kind == "BooleanType" and has_nulls:
        return "object"
    return _DTYPES.get(kind, "object")
