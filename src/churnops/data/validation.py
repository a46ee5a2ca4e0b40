"""Check a table against its data contract and report every problem by row and column.

Row-level verdicts are the contract's column rules (:mod:`churnops.data.rules`), the very
ones the API, batch scoring and the pyfunc apply, so a table and a JSON record holding the
same value get the same verdict and message. This module adds what only a whole table has:
missing or extra columns, duplicate ids, the label, and warnings (blanks read as missing,
values beyond the range seen in training, constant columns).

Rows are counted as people count them: row 1 is the table's first data row. Positions
(0-based) stay inside the code — ``bad_rows`` and the judged problems are keyed by them —
and every message and :class:`Issue` says rows, plus the file's line when the caller knows
where the rows start (``first_line``; :func:`csv_first_line` works it out for a CSV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from churnops.data.contract import BLANK_STRINGS, ColumnSpec, DataContract, clean_text
from churnops.data.distinct import factorize, has_repeats
from churnops.data.judged import JudgedFrame, judge_frame
from churnops.data.rules import ColumnRule, Problem, column_rules, shown

Severity = Literal["error", "warning"]
MAX_ROWS_SHOWN = 10


class Issue(BaseModel):
    """One problem found: which check, which column, which rows, what was expected.

    ``rows`` are 1-based row numbers (row 1: the first data row, below any header) and
    ``lines`` the same rows' line numbers in the source file, when known (else empty);
    both hold the first :data:`MAX_ROWS_SHOWN` of ``count``. ``examples`` are the
    offending values as text.
    """

    severity: Severity
    check: str
    column: str | None = None
    message: str
    count: int = 0
    rows: list[int] = []
    lines: list[int] = []
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
    """The report, the cleaned table, the judged columns, and which rows carry errors.

    ``bad_rows`` maps a row's 0-based position in the table to its reasons.
    """

    report: ValidationReport
    frame: pd.DataFrame
    judged: JudgedFrame
    bad_rows: dict[int, list[str]] = field(default_factory=dict)


def validate(
    df: pd.DataFrame,
    contract: DataContract,
    *,
    require_target: bool = True,
    rules: list[ColumnRule] | None = None,
    clean: bool = True,
    first_line: int | None = None,
) -> ValidationResult:
    """Validate ``df`` against ``contract`` and return a report plus the cleaned table.

    Row-level verdicts come from the contract's column rules (:mod:`churnops.data.rules`),
    the same ones the API and batch scoring apply; this adds the table-level checks
    (columns, duplicate ids, the label) and the warnings.

    Args:
        df: the table as read (text cells are read by the rules, with warnings).
        contract: the contract to check against.
        require_target: training data needs the label; scoring data does not.
        rules: the contract's column rules, when the caller holds them already.
        clean: also return the table with numbers as numbers and categories as clean
            text (training keeps it); batch scoring encodes from the judged columns instead.
        first_line: the source file's line holding row 1, when every row is one line
            (see :func:`csv_first_line`); messages then say ``row 5 (line 6)``.
    """
    checker = _Checker(df, contract, first_line)
    checker.run(require_target, rules or column_rules(contract), clean)
    report = ValidationReport(rows=len(df), columns=df.shape[1], issues=checker.issues)
    return ValidationResult(
        report=report, frame=checker.frame, judged=checker.judged, bad_rows=checker.bad_rows
    )


class _Checker:
    def __init__(self, df: pd.DataFrame, contract: DataContract, first_line: int | None) -> None:
        # A shallow copy: cleaning replaces whole columns (``frame[name] = ...``) and never
        # writes into one, so the caller's table is untouched without copying every cell.
        self.frame = df.copy(deep=False)
        self.frame.index = pd.RangeIndex(len(df))
        self.contract = contract
        self.first_line = first_line
        self.issues: list[Issue] = []
        self.bad_rows: dict[int, list[str]] = {}

    def run(self, require_target: bool, rules: list[ColumnRule], clean: bool) -> None:
        self._columns(require_target)
        self.judged = judge_frame(self.frame, self.contract, rules)
        self._row_problems()
        for spec in self.contract.features:
            if spec.name not in self.frame.columns:
                continue
            raw = self.frame[spec.name]
            if spec.kind == "numeric":
                self._numeric_warnings(spec, raw, clean)
            elif spec.kind == "categorical" and clean:
                self.frame[spec.name] = clean_text(raw)
            self._missing(spec, raw)
            self._constant(spec, raw)
        self._ids()
        if self.contract.target in self.frame.columns:
            self._target()

    def _add(self, severity: Severity, check: str, message: str, **kw: Any) -> None:
        self.issues.append(Issue(severity=severity, check=check, message=message, **kw))

    def _row_problems(self) -> None:
        """Report the rules' verdicts as one issue per column and check, rows listed."""
        grouped: dict[tuple[str | None, str], list[tuple[int, Problem]]] = {}
        for row, problems in self.judged.problems.items():
            for problem in problems:
                key = (problem.field, problem.verdict.message)
                grouped.setdefault(key, []).append((row, problem))
                self.bad_rows.setdefault(row, []).append(problem.reason)
        for (column, message), found in grouped.items():
            found.sort(key=lambda item: item[0])
            first = found[0][1]
            self._rows_issue(
                "error",
                first.verdict.check,
                column,
                message,
                [r for r, _ in found],
                [p.sent for _, p in found],
                _allowed_text(first.allowed),
            )

    def _row_error(
        self,
        mask: pd.Series | np.ndarray,
        check: str,
        column: str,
        message: str,
        values: pd.Series | None = None,
    ) -> None:
        """Report a table-level row check (duplicate ids, labels) that is not a column rule."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows) == 0:
            return
        sent = None if values is None else values.to_numpy(dtype=object)[rows].tolist()
        self._rows_issue("error", check, column, message, rows.tolist(), sent)
        for i, r in enumerate(rows.tolist()):
            said = "" if sent is None else f", sent {shown(sent[i])}"
            self.bad_rows.setdefault(r, []).append(f"{column}: {message}{said}")

    def _rows_issue(
        self,
        severity: Severity,
        check: str,
        column: str | None,
        message: str,
        rows: list[int],
        sent: list[Any] | None,
        allowed: str = "",
    ) -> None:
        """Add one issue about ``rows`` (positions, sorted): what was sent, then which rows.

        ``'contract': 1 row(s): unknown category (sent 'Weekly'; allowed: Month-to-month,
        One year, Two year); row 4 (line 5)``. Missing values are not quoted (the message
        says they are missing), nor is ``allowed`` when the message already states it.
        """
        values = list(dict.fromkeys(v for v in sent or [] if v is not None))
        said = []
        if values:
            more = ", …" if len(values) > MAX_ROWS_SHOWN else ""
            said.append("sent " + ", ".join(shown(v) for v in values[:MAX_ROWS_SHOWN]) + more)
        if allowed and allowed not in message:
            said.append(f"allowed: {allowed}")
        what = f"{message} ({'; '.join(said)})" if said else message
        first = rows[:MAX_ROWS_SHOWN]
        self._add(
            severity,
            check,
            f"{column!r}: {len(rows)} row(s): {what}; {rows_text(rows, self.first_line)}",
            column=column,
            count=len(rows),
            rows=[r + 1 for r in first],
            lines=[] if self.first_line is None else [r + self.first_line for r in first],
            examples=[str(v) for v in values[:MAX_ROWS_SHOWN]],
        )

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

    def _numeric_warnings(self, spec: ColumnSpec, raw: pd.Series, clean: bool) -> None:
        if not _is_number_dtype(raw):
            text = raw.astype("string").str.strip()
            blank = text.isna() | text.str.lower().isin(BLANK_STRINGS)
            self._rows_warning(
                "coerced_blanks", spec.name, "blank text read as missing", blank & raw.notna(), raw
            )
            if clean:  # only text is replaced: int columns stay int
                self.frame[spec.name] = pd.to_numeric(text.mask(blank), errors="coerce")
        if spec.min is None or spec.max is None:
            return
        row = self.judged_dense_row(spec.name)
        with np.errstate(invalid="ignore"):
            beyond = (row < spec.min) | (row > spec.max)
        beyond &= ~self.judged.bad
        self._rows_warning(
            "beyond_seen_range",
            spec.name,
            f"beyond the range seen in training [{spec.min:g}, {spec.max:g}]",
            beyond,
            raw,
        )

    def _rows_warning(
        self, check: str, column: str, message: str, mask: Any, values: pd.Series | None = None
    ) -> None:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            sent = None if values is None else values.to_numpy(dtype=object)[rows].tolist()
            self._rows_issue("warning", check, column, message, rows.tolist(), sent)

    def judged_dense_row(self, name: str) -> np.ndarray:
        """Return the judged (encoded) values of a numeric or boolean column."""
        dense = [s.name for s in self.contract.features if s.kind != "categorical"]
        return self.judged.dense[dense.index(name)]

    def _missing(self, spec: ColumnSpec, raw: pd.Series) -> None:
        if spec.missing_rate > 0.0 or spec.policy.missing == "reject":
            return  # expected, or already an error from the rule
        missing = raw.isna()
        if not _is_number_dtype(raw):
            missing |= clean_text(raw).isna()
        self._rows_warning(
            "unexpected_missing", spec.name, "missing where training had none; imputed", missing
        )

    def _constant(self, spec: ColumnSpec, raw: pd.Series) -> None:
        if len(raw) > 1 and _nunique_at_most_one(raw):
            present = raw.dropna()
            value = shown(present.iloc[0]) if len(present) else "missing"
            self._add(
                "warning",
                "constant_column",
                f"{spec.name!r} holds a single value ({value}) in every row; it carries no signal.",
                column=spec.name,
            )

    def _ids(self) -> None:
        name = self.contract.id
        if not name or name not in self.frame.columns:
            return
        ids = self.frame[name]
        missing = ids.isna()  # refused by the id rule already
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


def _is_number_dtype(values: pd.Series) -> bool:
    dtype = values.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _nunique_at_most_one(values: pd.Series) -> bool:
    """Return whether ``values`` hold at most one distinct non-missing value."""
    if _is_number_dtype(values):
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        present = array[~np.isnan(array)]
        return len(present) == 0 or bool(present.min() == present.max())
    codes, _ = factorize(values)
    return len(np.unique(codes[codes >= 0])) <= 1


def rows_text(positions: Sequence[int], first_line: int | None = None) -> str:
    """Return 0-based positions as people count rows: ``row 3`` or ``rows 5 (line 6), 12
    (line 13)`` (the source file's lines when row 1 is on ``first_line``), the first
    :data:`MAX_ROWS_SHOWN` and how many more.
    """
    listed = ", ".join(
        str(r + 1) if first_line is None else f"{r + 1} (line {r + first_line})"
        for r in positions[:MAX_ROWS_SHOWN]
    )
    more = len(positions) - MAX_ROWS_SHOWN
    return f"row{'s' if len(positions) > 1 else ''} {listed}" + (
        f" (and {more} more)" if more > 0 else ""
    )


def csv_first_line(path: str | Path, rows: int) -> int | None:
    """Return the line of row 1 in a CSV file read with one header line (2), or None.

    A row's line is its number plus one only when every row is one line: a quoted cell
    holding a line break, or blank lines (which the reader skips), shift the lines after
    them. The file's lines are counted (bytes, not parsed) and compared with the rows
    read; when they differ no line is given rather than a wrong one.
    """
    newlines, last = 0, b"\n"
    with Path(path).open("rb") as file:
        while chunk := file.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (last != b"\n")
    return 2 if lines == rows + 1 else None


def _allowed_text(allowed: Any) -> str:
    """Return what a rule allows as a message says it (levels listed, a numeric range)."""
    if isinstance(allowed, list):
        return ", ".join(map(str, allowed[:20])) + (", …" if len(allowed) > 20 else "")
    if isinstance(allowed, dict):
        low, high = allowed.get("minimum"), allowed.get("maximum")
        if low is not None and high is not None:
            return f"[{low:g}, {high:g}]"
        if high is not None:
            return f"≤ {high:g}"
        return "any number" if low is None else f"≥ {low:g}"
    return "text" if allowed == "string" else str(allowed)


def _repeats(ids: pd.Series) -> bool:
    """Return True when a non-missing id occurs twice (Arrow strings: by hashes, no objects)."""
    if isinstance(ids.dtype, pd.ArrowDtype) and pa.types.is_string(ids.dtype.pyarrow_dtype):
        return has_repeats(pa.array(ids))
    return bool(ids.duplicated(keep="first").any())
