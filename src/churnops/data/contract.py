"""The data contract: what a customer table must look like, inferred from one example.

The contract is the API of the whole system: validation, the encoder, the API's request
schema and drift checks are derived from it, so a new dataset needs only ``--target`` and
``--id``. It is plain JSON that a person can read and tighten by hand.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator

from churnops.errors import ContractError

Role = Literal["id", "target", "feature", "time", "ignored"]
Kind = Literal["numeric", "categorical", "boolean", "datetime"]
Scalar = str | int | float | bool

POSITIVE_WORDS = ("yes", "true", "1", "churn", "churned", "y", "t", "left", "exited", "1.0")
NEGATIVE_WORDS = ("no", "false", "0", "n", "f", "stayed", "retained", "active", "0.0")
BLANK_STRINGS = ("", " ", "na", "n/a", "nan", "null", "none", "?")
NUMERIC_TEXT_SHARE = 0.95  # a text column is numeric when this share of its cells parse
MAX_CATEGORIES = 200  # above this a column is open-ended: no unseen-category check
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class ColumnPolicy(BaseModel):
    """How every path treats a column's awkward values (see :mod:`churnops.data.rules`).

    Inferred from the training data and editable in the contract JSON; table validation,
    batch scoring (pandas and Spark), the API and the pyfunc all apply it the same way.
    """

    missing: Literal["reject", "impute"] = Field(
        "impute",
        description="A missing or blank value is an error, or becomes the training median "
        "(numbers), false (booleans) or no level (categories).",
    )
    text: Literal["parse", "reject"] = Field(
        "parse",
        description='Numbers and booleans written as text ("12.5", "yes") are read, or rejected.',
    )
    unseen: Literal["reject", "ignore"] = Field(
        "reject", description="A category not seen in training is an error, or encodes as none."
    )
    out_of_range: Literal["reject", "clip"] = Field(
        "reject", description="A number outside [lower, upper] is an error, or is clipped to it."
    )


class ColumnSpec(BaseModel):
    """What one column holds: its role, kind, the values it was seen with, and its policy."""

    name: str
    role: Role
    kind: Kind
    dtype: str
    missing_rate: float = 0.0
    note: str | None = None
    # numeric
    integer: bool | None = None
    min: float | None = None
    max: float | None = None
    lower: float | None = Field(None, description="Values below are errors.")
    upper: float | None = Field(None, description="Values above are errors.")
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    # categorical and boolean
    categories: dict[str, float] | None = Field(None, description="Level -> frequency.")
    open_categories: bool = False
    levels: list[Scalar] | None = Field(None, description="Boolean [false, true] as stored.")
    policy: ColumnPolicy

    @model_validator(mode="before")
    @classmethod
    def _default_policy(cls, data: Any) -> Any:
        """Derive the policy from what training saw (contracts written before it existed too).

        A column that was never missing in training rejects a missing value; one that was
        sometimes missing imputes it. Open-ended categoricals ignore unseen levels.
        """
        if isinstance(data, dict) and data.get("policy") is None:
            policy = {
                "missing": "impute" if data.get("missing_rate") else "reject",
                "unseen": "ignore" if data.get("open_categories") else "reject",
            }
            data = {**data, "policy": policy}
        return data

    @model_validator(mode="after")
    def _usable(self) -> ColumnSpec:
        """Refuse what no column rule could apply (a hand-edited contract may hold it)."""
        if self.kind == "boolean" and self.levels is not None and len(self.levels) != 2:
            raise ValueError(f"boolean column {self.name!r} needs exactly two levels")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"column {self.name!r} has lower > upper")
        return self

    @property
    def median(self) -> float:
        """Return the training median used to impute missing numbers."""
        if self.quantiles and "0.5" in self.quantiles:
            return self.quantiles["0.5"]
        return self.mean if self.mean is not None else 0.0


class DataContract(BaseModel):
    """A table's contract: its columns, the target and how to read the positive label."""

    version: int = 1
    target: str
    id: str | None = None
    positive_label: Scalar
    labels: list[Scalar]
    positive_rate: float
    rows: int
    digest: str
    created_at: str
    columns: list[ColumnSpec]

    @property
    def features(self) -> list[ColumnSpec]:
        """Return the feature columns in table order."""
        return [c for c in self.columns if c.role == "feature"]

    @property
    def feature_names(self) -> list[str]:
        """Return the feature column names in table order."""
        return [c.name for c in self.features]

    @property
    def time_column(self) -> str | None:
        """Return the first datetime column (when each row was observed), or None."""
        return next((c.name for c in self.columns if c.role == "time"), None)

    def column(self, name: str) -> ColumnSpec:
        """Return the spec of column ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ContractError(f"Column {name!r} is not in the contract.")

    def target_series(self, values: pd.Series) -> pd.Series:
        """Map raw target values to 1 (positive label) and 0; unknown labels become NaN."""
        positive = label_key(self.positive_label)
        known = {label_key(v) for v in self.labels}
        keys = values.map(label_key)
        out = pd.Series(np.where(keys == positive, 1.0, 0.0), index=values.index)
        out[~keys.isin(known) | values.isna()] = np.nan
        return out

    def save(self, path: str | Path) -> Path:
        """Write the contract as indented JSON."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(self.model_dump_json(indent=2))
        return file

    @classmethod
    def load(cls, path: str | Path) -> DataContract:
        """Read a contract written by :meth:`save`, with a clear error when it is not one."""
        file = Path(path)
        try:
            return cls.model_validate_json(file.read_text())
        except FileNotFoundError as exc:
            raise ContractError(f"Contract file not found: {file}") from exc
        except ValueError as exc:
            raise ContractError(f"{file} is not a valid churnops contract: {exc}") from exc


def frame_digest(df: pd.DataFrame) -> str:
    """Return a content digest of a table (order-sensitive), stable across runs."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    h = hashlib.sha256(hashed.tobytes())
    h.update(json.dumps([str(c) for c in df.columns]).encode())
    return h.hexdigest()[:16]


def infer_contract(
    df: pd.DataFrame,
    target: str,
    id_column: str | None = None,
    positive: str | None = None,
) -> DataContract:
    """Infer a contract from an example table with a churn label.

    Args:
        df: the example table (usually the training data).
        target: the churn label column.
        id_column: the customer id column, if any; it must be unique.
        positive: the positive label; guessed from yes/true/1/churned when omitted.
    """
    if target not in df.columns:
        raise ContractError(
            f"Target column {target!r} not found; columns are: {', '.join(map(str, df.columns))}.",
            {"column": target},
        )
    if id_column is not None and id_column not in df.columns:
        raise ContractError(f"Id column {id_column!r} not found.", {"column": id_column})
    if len(df) < 10:
        raise ContractError(f"Need at least 10 rows to infer a contract, got {len(df)}.")
    labels, positive_label = _target_labels(df[target], positive)
    y = df[target].map(label_key) == label_key(positive_label)
    columns = []
    for name in df.columns:
        if name == target:
            columns.append(_target_spec(df[name], labels))
        elif name == id_column:
            columns.append(
                ColumnSpec(
                    name=str(name),
                    role="id",
                    kind="categorical",
                    dtype=str(df[name].dtype),
                    missing_rate=float(df[name].isna().mean()),
                )
            )
        else:
            columns.append(infer_column(df[name]))
    return DataContract(
        target=target,
        id=id_column,
        positive_label=positive_label,
        labels=labels,
        positive_rate=float(y.mean()),
        rows=len(df),
        digest=frame_digest(df),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        columns=columns,
    )


def accepting_all_of(fresh: DataContract, old: DataContract) -> DataContract:
    """Return ``fresh`` loosened so it accepts every record ``old`` accepted.

    Why: a retrained challenger infers its contract from recent data. A column that had no
    blanks there, a narrower range, or a level that did not occur would make the new
    champion refuse customers the old one scored (after ``make run``'s simulated retrain:
    every new customer with a blank ``total_charges``, 11 of the demo's 7,043). Per
    feature of the same kind: a blank the old contract imputed is imputed; the accepted
    range is the wider of the two; a level only the old contract knew, or an old policy
    that ignored unseen levels, encodes as no level instead of an error; clipping stays.
    """
    before = {c.name: c for c in old.columns}
    columns = []
    for col in fresh.columns:
        was = before.get(col.name)
        if was is None or col.role != "feature" or was.kind != col.kind:
            columns.append(col)
            continue
        policy = col.policy.model_copy()
        if was.policy.missing == "impute":
            policy.missing = "impute"
        if was.policy.unseen == "ignore" or set(was.categories or {}) - set(col.categories or {}):
            policy.unseen = "ignore"
        if was.policy.out_of_range == "clip":
            policy.out_of_range = "clip"
        bounds = {
            "lower": _wider(col.lower, was.lower, min),
            "upper": _wider(col.upper, was.upper, max),
        }
        columns.append(col.model_copy(update={"policy": policy, **bounds}))
    return fresh.model_copy(update={"columns": columns})


def _wider(a: float | None, b: float | None, pick: Any) -> float | None:
    """The looser of two bounds; None (no bound) when either has none."""
    return None if a is None or b is None else pick(a, b)


def infer_column(values: pd.Series) -> ColumnSpec:
    """Infer the kind and the seen values of one feature column."""
    name = str(values.name)
    dtype = str(values.dtype)
    numeric = as_numeric(values)
    if numeric is None:
        text = values.astype("string").str.strip()
        text = text.mask(text.str.lower().isin(BLANK_STRINGS))
    else:
        text = None
    present = numeric.dropna() if numeric is not None else text.dropna()
    missing_rate = float(1.0 - len(present) / max(len(values), 1))
    base = {"name": name, "dtype": dtype, "missing_rate": missing_rate}
    if numeric is None and is_datetime(values):
        return ColumnSpec(
            role="time",
            kind="datetime",
            note="dates: when a row was observed (monitoring's time windows), not a feature",
            **base,
        )
    distinct = present.unique()
    if len(distinct) <= 1:
        return ColumnSpec(role="ignored", kind="categorical", note="constant column", **base)
    if len(distinct) == 2:
        levels = _boolean_levels(values.dropna().unique(), distinct)
        if levels is not None:
            freq = values.dropna().map(label_key).value_counts(normalize=True)
            freq = {str(k): float(v) for k, v in freq.items()}
            return ColumnSpec(
                role="feature", kind="boolean", levels=levels, categories=freq, **base
            )
    if numeric is not None:
        return _numeric_spec(numeric, base)
    freq = present.value_counts(normalize=True)
    if len(freq) > 0.5 * len(values) and len(freq) > 50:
        return ColumnSpec(
            role="ignored", kind="categorical", note="unique per row (an id or free text)", **base
        )
    open_ended = len(freq) > MAX_CATEGORIES
    freq = freq.iloc[:MAX_CATEGORIES]
    return ColumnSpec(
        role="feature",
        kind="categorical",
        categories={str(k): round(float(v), 6) for k, v in freq.items()},
        open_categories=open_ended,
        **base,
    )


def is_datetime(values: pd.Series) -> bool:
    """Return True when a column holds dates: a datetime dtype, or ISO-8601 text that parses.

    Only ISO-8601 text counts ("2026-11-29", "2026-11-29T15:40:00"): other formats are
    ambiguous (is 03/04 March or April?) and a free-text column must never become a date.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    sample = values.dropna().astype("string").str.strip().head(1000)
    sample = sample[~sample.str.lower().isin(BLANK_STRINGS)]
    if sample.empty or not sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    parsed = pd.to_datetime(sample, format="ISO8601", errors="coerce")
    return bool(parsed.notna().mean() >= NUMERIC_TEXT_SHARE)


def as_numeric(values: pd.Series) -> pd.Series | None:
    """Return ``values`` as floats when the column is numeric (also numbers stored as text).

    Blank cells such as ``" "`` become NaN; a text column counts as numeric when at least
    95% of its non-blank cells parse as numbers. Returns None for non-numeric columns.
    """
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype("string").str.strip()
    blank = text.isna() | text.str.lower().isin(BLANK_STRINGS)
    parsed = pd.to_numeric(text.mask(blank), errors="coerce")
    non_blank = int((~blank).sum())
    if non_blank == 0:
        return None
    if parsed.notna().sum() / non_blank >= NUMERIC_TEXT_SHARE:
        return parsed.astype("float64")
    return None


def _numeric_spec(numeric: pd.Series, base: dict[str, Any]) -> ColumnSpec:
    present = numeric.dropna()
    lo, hi = float(present.min()), float(present.max())
    span = hi - lo
    qs = present.quantile(list(QUANTILES))
    integer = bool(np.all(np.mod(present.to_numpy(), 1) == 0))
    return ColumnSpec(
        role="feature",
        kind="numeric",
        integer=integer,
        min=lo,
        max=hi,
        # Unseen-but-plausible values are warnings; values beyond these bounds are errors.
        lower=0.0 if lo >= 0 else lo - span,
        upper=hi + span,
        mean=_finite(present.mean()),
        std=_finite(present.std()),
        quantiles={str(q): float(v) for q, v in qs.items()},
        **base,
    )


def _boolean_levels(raw_values: np.ndarray, distinct: np.ndarray) -> list[Scalar] | None:
    keys = {label_key(v): v for v in raw_values}
    for true_word, false_word in (("1", "0"), ("yes", "no"), ("true", "false"), ("y", "n")):
        if set(keys) == {true_word, false_word}:
            return [_plain(keys[false_word]), _plain(keys[true_word])]
    return None


def _target_spec(values: pd.Series, labels: list[Scalar]) -> ColumnSpec:
    freq = values.dropna().astype(str).value_counts(normalize=True)
    return ColumnSpec(
        name=str(values.name),
        role="target",
        kind="categorical",
        dtype=str(values.dtype),
        missing_rate=float(values.isna().mean()),
        categories={str(k): float(v) for k, v in freq.items()},
    )


def _target_labels(values: pd.Series, positive: str | None) -> tuple[list[Scalar], Scalar]:
    present = values.dropna()
    distinct = [_plain(v) for v in present.unique()]
    if len(distinct) != 2:
        shown = ", ".join(map(str, distinct[:10])) or "none"
        raise ContractError(
            f"Target {values.name!r} must have exactly two labels; found {len(distinct)}: {shown}.",
            {"column": str(values.name), "labels": [str(d) for d in distinct[:10]]},
        )
    if positive is not None:
        match = [d for d in distinct if label_key(d) == label_key(positive)]
        if not match:
            raise ContractError(
                f"Positive label {positive!r} is not among the target's labels: "
                f"{', '.join(map(str, distinct))}."
            )
        return distinct, match[0]
    for word in POSITIVE_WORDS:
        for d in distinct:
            if label_key(d) == word:
                return distinct, d
    raise ContractError(
        f"Cannot tell which target label means churn among {distinct}; pass --positive LABEL."
    )


def map_unique(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """Apply ``func`` once per distinct value; missing cells become None.

    Customer columns repeat a handful of values over millions of rows, so mapping the
    distinct values (``pd.factorize``) instead of every cell makes per-cell Python helpers
    such as :func:`label_key` cost a vectorised lookup — it is what lets batch scoring
    validate a million rows in about a second.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[: len(uniques)] = [func(u) for u in uniques]
    mapped[-1] = None  # code -1: a missing cell
    return pd.Series(mapped[codes], index=values.index, name=values.name)


def clean_text(values: pd.Series) -> pd.Series:
    """Return cells as stripped text, with blank-like cells (``" "``, ``"NA"``…) as None."""
    return map_unique(values, clean_cell)


def clean_cell(value: Any) -> str | None:
    """Return one cell as stripped text, or None when it is blank-like."""
    text = str(value).strip()
    return None if text.lower() in BLANK_STRINGS else text


def label_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating) and not math.isnan(value) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _plain(value: Any) -> Scalar:
    """Turn numpy scalars into JSON-safe Python scalars."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
