"""Check a table against its data contract and report every problem by row and column.

The checks are vectorised pandas rather than a pandera schema: each check needs a message
built from the contract (the allowed categories, the bounds, the coercion that happened),
blank-as-missing coercion that must warn instead of fail, and per-row error sets that batch
scoring uses to reject rows — pandera's failure cases would need the same code around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from churnops.data.contract import (
    BLANK_STRINGS,
    ColumnSpec,
    DataContract,
    clean_cell,
    label_key,
)
from churnops.data.distinct import factorize, has_repeats

Severity = Literal["error", "warning"]
MAX_ROWS_SHOWN = 10


class Issue(BaseModel):
    """One problem found: which check, which column, which rows, what was expected."""

    severity: Severity
    check: str
    column: str | None = None
    message: str
    count: int = 0
    rows: list[int] = []
    examples: list[str] = []


class ValidationReport(BaseModel):
    """Everything validation found in one table."""

    rows: int
    columns: int
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        """Return True when there is no error (warnings are fine)."""
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        """Return the issues that make the table unusable as it is."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Return the issues that were fixed or may be fine."""
        return [i for i in self.issues if i.severity == "warning"]

    def summary(self) -> str:
        """Return a one-paragraph human summary of the errors."""
        lines = [f"{len(self.errors)} error(s), {len(self.warnings)} warning(s):"]
        lines += [f"- [{i.check}] {i.message}" for i in self.errors]
        return "\n".join(lines)


@dataclass
class ValidationResult:
    """The report, the cleaned table, and which rows carry row-level errors."""

    report: ValidationReport
    frame: pd.DataFrame
    bad_rows: dict[int, list[str]] = field(default_factory=dict)


def validate(
    df: pd.DataFrame, contract: DataContract, *, require_target: bool = True
) -> ValidationResult:
    """Validate ``df`` against ``contract`` and return a report plus the coerced table.

    Args:
        df: the table as read (text cells are coerced here, with warnings).
        contract: the contract to check against.
        require_target: training data needs the label; scoring data does not.
    """
    checker = _Checker(df, contract)
    checker.run(require_target)
    report = ValidationReport(rows=len(df), columns=df.shape[1], issues=checker.issues)
    return ValidationResult(report=report, frame=checker.frame, bad_rows=checker.bad_rows)


class _Checker:
    def __init__(self, df: pd.DataFrame, contract: DataContract) -> None:
        # A shallow copy: the checks replace whole columns (``frame[name] = ...``) and never
        # write into one, so the caller's table is untouched without copying every cell.
        self.frame = df.copy(deep=False)
        self.frame.index = pd.RangeIndex(len(df))
        self.contract = contract
        self.issues: list[Issue] = []
        self.bad_rows: dict[int, list[str]] = {}
        self._distinct: dict[str, int] = {}  # distinct non-missing values, when counted

    def run(self, require_target: bool) -> None:
        self._columns(require_target)
        for spec in self.contract.features:
            if spec.name not in self.frame.columns:
                continue
            if spec.kind == "numeric":
                self._numeric(spec)
            elif spec.kind == "boolean":
                self._boolean(spec)
            else:
                self._categorical(spec)
            self._constant(spec)
        self._ids()
        if self.contract.target in self.frame.columns:
            self._target()

    def _add(self, severity: Severity, check: str, message: str, **kw: Any) -> None:
        self.issues.append(Issue(severity=severity, check=check, message=message, **kw))

    def _row_error(
        self,
        mask: pd.Series | np.ndarray,
        check: str,
        column: str,
        message: str,
        values: pd.Series | None = None,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            return
        examples = []
        if values is not None:
            examples = [str(v) for v in pd.unique(values.to_numpy()[rows])[:MAX_ROWS_SHOWN]]
        shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
        more = f" (and {len(rows) - MAX_ROWS_SHOWN} more)" if len(rows) > MAX_ROWS_SHOWN else ""
        self._add(
            "error",
            check,
            f"{column!r}: {len(rows)} row(s) {message}; rows {shown}{more}",
            column=column,
            count=len(rows),
            rows=rows[:MAX_ROWS_SHOWN].tolist(),
            examples=examples,
        )
        reason = f"{column}: {message}"
        for r in rows.tolist():
            self.bad_rows.setdefault(r, []).append(reason)

    def _columns(self, require_target: bool) -> None:
        present = set(self.frame.columns)
        required = [c.name for c in self.contract.features]
        if self.contract.id:
            required.append(self.contract.id)
        if require_target:
            required.append(self.contract.target)
        missing = [c for c in required if c not in present]
        if missing:
            self._add(
                "error",
                "missing_columns",
                f"Missing required column(s): {', '.join(missing)}.",
                count=len(missing),
                examples=missing,
            )
        known = {c.name for c in self.contract.columns}
        extra = [str(c) for c in self.frame.columns if c not in known]
        if extra:
            self._add(
                "warning",
                "extra_columns",
                f"Column(s) not in the contract are ignored: {', '.join(extra)}.",
                examples=extra,
            )

    def _numeric(self, spec: ColumnSpec) -> None:
        raw = self.frame[spec.name]
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = raw.astype("float64")
        else:
            text = raw.astype("string").str.strip()
            blank = text.isna() | text.str.lower().isin(BLANK_STRINGS)
            values = pd.to_numeric(text.mask(blank), errors="coerce").astype("float64")
            unparsed = values.isna() & ~blank
            self._row_error(
                unparsed, "non_numeric", spec.name, "hold text where a number is expected", raw
            )
            coerced = int((blank & raw.notna()).sum())
            if coerced:
                self._add(
                    "warning",
                    "coerced_blanks",
                    f"{spec.name!r}: {coerced} blank cell(s) read as missing.",
                    column=spec.name,
                    count=coerced,
                )
            self.frame[spec.name] = values  # only text is replaced: int columns stay int
        array = values.to_numpy()  # numpy comparisons: no Series built per check
        if spec.lower is not None and spec.upper is not None:
            outside = (array < spec.lower) | (array > spec.upper)
            self._row_error(
                outside,
                "out_of_range",
                spec.name,
                f"are outside the allowed range [{spec.lower:g}, {spec.upper:g}]",
                values,
            )
            unseen = int(np.count_nonzero(~outside & ((array < spec.min) | (array > spec.max))))
            if unseen:
                self._add(
                    "warning",
                    "beyond_seen_range",
                    f"{spec.name!r}: {unseen} value(s) beyond the range seen in "
                    f"training [{spec.min:g}, {spec.max:g}].",
                    column=spec.name,
                    count=unseen,
                )
        self._missing(spec, values, missing=int(np.count_nonzero(np.isnan(array))))

    def _boolean(self, spec: ColumnSpec) -> None:
        raw = self.frame[spec.name]
        false_key, true_key = (label_key(v) for v in spec.levels or [0, 1])
        # Checks run on the few distinct values; rows pick their answer up by code.
        codes, uniques = factorize(raw)
        known = np.array([label_key(u) in (false_key, true_key) for u in uniques] + [True])
        if not known.all():  # a per-row pass only when some value is wrong
            allowed = ", ".join(map(str, spec.levels or []))
            bad = ~known[codes]
            self._row_error(bad, "unknown_boolean", spec.name, f"are not one of: {allowed}", raw)
        self._missing(spec, raw, missing=int(np.count_nonzero(codes < 0)))
        self._distinct[spec.name] = len(uniques)

    def _categorical(self, spec: ColumnSpec) -> None:
        raw = self.frame[spec.name]
        # clean_text, unseen and missing checks per distinct value, not per cell.
        codes, uniques = factorize(raw)
        cleaned = np.empty(len(uniques) + 1, dtype=object)
        cleaned[: len(uniques)] = [clean_cell(u) for u in uniques]
        cleaned[-1] = None  # code -1: a missing cell
        text = _cleaned_column(raw, codes, cleaned)
        self.frame[spec.name] = text
        present = np.array([c is not None for c in cleaned])
        if not spec.open_categories and spec.categories:
            allowed_set = set(spec.categories)
            unseen = present & np.array([c not in allowed_set for c in cleaned])
            allowed = ", ".join(list(spec.categories)[:20])
            if unseen.any():
                self._row_error(
                    unseen[codes],
                    "unseen_category",
                    spec.name,
                    f"hold categories not in: {allowed}",
                    text,
                )
        missing = codes < 0 if present[:-1].all() else ~present[codes]  # blank text is missing
        self._missing(spec, text, missing=int(np.count_nonzero(missing)))
        self._distinct[spec.name] = len({c for c in cleaned if c is not None})

    def _missing(self, spec: ColumnSpec, values: pd.Series, missing: int | None = None) -> None:
        if missing is None:
            missing = int(values.isna().sum())
        if missing and spec.missing_rate == 0.0:
            self._add(
                "warning",
                "unexpected_missing",
                f"{spec.name!r}: {missing} missing value(s) where training had none; they "
                "are imputed.",
                column=spec.name,
                count=missing,
            )

    def _constant(self, spec: ColumnSpec) -> None:
        values = self.frame[spec.name]
        if len(values) > 1 and self._nunique_at_most_one(spec.name, values):
            self._add(
                "warning",
                "constant_column",
                f"{spec.name!r} holds a single value in every row; it carries no signal.",
                column=spec.name,
            )

    def _nunique_at_most_one(self, name: str, values: pd.Series) -> bool:
        """Return whether ``values`` hold at most one distinct non-missing value."""
        if name in self._distinct:  # counted by the column's check
            return self._distinct[name] <= 1
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
            present = array[~np.isnan(array)]
            return len(present) == 0 or bool(present.min() == present.max())
        return bool(values.nunique(dropna=True) <= 1)

    def _ids(self) -> None:
        name = self.contract.id
        if not name or name not in self.frame.columns:
            return
        ids = self.frame[name]
        missing = ids.isna()
        self._row_error(missing, "missing_id", name, "have no id")
        # A cheap pass settles the usual case, no duplicates at all; only then are all rows
        # sharing an id marked.
        if _repeats(ids):
            dup = ~missing & ids.duplicated(keep=False)
            self._row_error(dup, "duplicate_id", name, "share an id with another row", ids)

    def _target(self) -> None:
        name = self.contract.target
        raw = self.frame[name]
        self._row_error(raw.isna(), "missing_target", name, "have no label")
        y = self.contract.target_series(raw)
        labels = ", ".join(map(str, self.contract.labels))
        self._row_error(
            y.isna() & raw.notna(), "unknown_label", name, f"are not one of: {labels}", raw
        )
        classes = y.dropna().unique()
        if len(classes) < 2 and len(raw) > 0:
            negative = [v for v in self.contract.labels if v != self.contract.positive_label]
            seen = "none"
            if len(classes):
                seen = str(self.contract.positive_label if classes[0] == 1 else negative[0])
            self._add(
                "error",
                "one_class_target",
                f"Target {name!r} has a single class ({seen}); training needs churners and "
                "non-churners.",
                column=name,
            )


def _cleaned_column(raw: pd.Series, codes: np.ndarray, cleaned: np.ndarray) -> pd.Series:
    """Return the column as cleaned text (``cleaned[codes]``, None for missing cells).

    A ``category`` column (Parquet strings) stays a category over the cleaned values, so
    the encoder reads its codes instead of hashing a million strings again; other columns
    become object text as before.
    """
    if not isinstance(raw.dtype, pd.CategoricalDtype):
        return pd.Series(cleaned[codes], index=raw.index, name=raw.name)
    if raw.cat.categories.tolist() == cleaned[:-1].tolist():  # every level already clean
        return raw
    levels = list(dict.fromkeys(c for c in cleaned if c is not None))
    position = {level: i for i, level in enumerate(levels)}
    remap = np.array([position.get(c, -1) for c in cleaned], dtype=np.int64)
    values = pd.Categorical.from_codes(remap[codes], categories=pd.Index(levels, dtype=object))
    return pd.Series(values, index=raw.index, name=raw.name)


def _repeats(ids: pd.Series) -> bool:
    """Return True when a non-missing id occurs twice (Arrow strings: by hashes, no objects)."""
    if isinstance(ids.dtype, pd.ArrowDtype) and pa.types.is_string(ids.dtype.pyarrow_dtype):
        return has_repeats(pa.array(ids))
    return bool(ids.duplicated(keep="first").any())
