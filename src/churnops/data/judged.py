"""Judge a whole table by the contract's column rules: encoded columns plus per-row problems.

Table validation and the encoder share this pass: validation turns the problems into its
report, batch scoring drops the rows that have any and encodes the rest from the same
arrays, so a table is judged once. Every value goes through :meth:`ColumnRule.judge` (once
per distinct value) except numbers stored as numbers, which take the numpy route that
applies the same checks (see :func:`_numeric_column`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnops.data.contract import DataContract
from churnops.data.distinct import factorize
from churnops.data.rules import (
    BAD_ID,
    CONTROL_ID,
    ID_BLANK,
    ID_CONTROL,
    MAX_ID_CHARS,
    MISSING_ID,
    NOT_FINITE,
    ColumnRule,
    Problem,
    Verdict,
    ids_accepted,
    judge_id,
)


@dataclass
class JudgedFrame:
    """A table judged column by column.

    ``dense`` holds numeric and boolean columns' encoded values (one row per column),
    ``hot`` each categorical's matrix column (-1: no level); a refused value leaves its
    cell undefined, so rows in ``problems`` must not be encoded.
    """

    rows: int
    dense: np.ndarray
    hot: np.ndarray
    problems: dict[int, list[Problem]] = field(default_factory=dict)

    @property
    def bad(self) -> np.ndarray:
        """Return a boolean mask of the rows with at least one problem."""
        mask = np.zeros(self.rows, dtype=bool)
        if self.problems:
            mask[list(self.problems)] = True
        return mask


def judge_frame(df: pd.DataFrame, contract: DataContract, rules: list[ColumnRule]) -> JudgedFrame:
    """Judge every feature column of ``df`` present in it, and the id column.

    A feature column absent from ``df`` is left to the caller (a table-level error in
    validation); its encoded values are the rule's missing-value fill.
    """
    n = len(df)
    dense_rules = [r for r in rules if r.kind != "categorical"]
    hot_rules = [r for r in rules if r.kind == "categorical"]
    dense = np.empty((len(dense_rules), n), dtype=np.float64)
    hot = np.empty((len(hot_rules), n), dtype=np.int32)
    problems: dict[int, list[Problem]] = {}
    for rule, out in [*zip(dense_rules, dense, strict=True), *zip(hot_rules, hot, strict=True)]:
        if rule.name not in df.columns:
            out[:] = rule.fill
            continue
        values = df[rule.name]
        if rule.kind == "numeric" and _stored_as_numbers(values):
            verdicts, codes = _numeric_column(rule, values, out)
        else:
            verdicts, codes = _distinct_column(rule, values, out)
        _collect(problems, rule.name, rule.allowed, values, verdicts, codes)
    if contract.id and contract.id in df.columns:
        ids = df[contract.id]
        verdicts, codes = _id_column(ids)
        _collect(problems, contract.id, "string", ids, verdicts, codes)
    return JudgedFrame(n, dense, hot, problems)


def _stored_as_numbers(values: pd.Series) -> bool:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return False
    return pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype)


def _numeric_column(
    rule: ColumnRule, values: pd.Series, out: np.ndarray
) -> tuple[list[Verdict], np.ndarray | None]:
    """Judge numbers stored as numbers with numpy: missing, then finite, then the range."""
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    np.copyto(out, array)
    missing = np.isnan(array)
    infinite = np.isinf(array)
    outside = ~infinite & ((array < rule.lower) | (array > rule.upper))
    verdicts: list[Verdict] = []
    codes = None
    for mask, verdict in (
        (missing, rule.missing),
        (infinite, NOT_FINITE),
        (outside, rule.out_of_range),
    ):
        if not mask.any():
            continue
        if isinstance(verdict, Verdict):
            if codes is None:
                codes = np.zeros(len(array), dtype=np.int16)
            verdicts.append(verdict)
            codes[mask] = len(verdicts)
        elif mask is missing:
            out[mask] = verdict  # the imputed value
        else:  # clipped into the allowed range
            np.clip(out, rule.lower, rule.upper, out=out)
    return verdicts, codes


def _distinct_column(
    rule: ColumnRule, values: pd.Series, out: np.ndarray
) -> tuple[list[Verdict], np.ndarray | None]:
    """Judge each distinct value once with :meth:`ColumnRule.judge`; rows take it by code."""
    try:
        codes, uniques = factorize(values)
        per_cell = _mixes_flags_and_numbers(uniques, values)
    except TypeError:  # an unhashable cell (a list or dict from JSON)
        per_cell = True
    if per_cell:
        # True == 1 as a dict key: factorize merged them, but a rule may judge them apart.
        codes, uniques = np.arange(len(values)), values.to_numpy(dtype=object)
    judged = [rule.judge(u) for u in uniques] + [rule.judge(None)]
    encoded = np.array(
        [rule.fill if isinstance(j, Verdict) else j for j in judged], dtype=out.dtype
    )
    np.take(encoded, codes, out=out)
    verdicts: list[Verdict] = []
    slot: dict[Verdict, int] = {}
    per_value = np.zeros(len(judged), dtype=np.int16)
    for i, j in enumerate(judged):
        if isinstance(j, Verdict):
            if j not in slot:
                verdicts.append(j)
                slot[j] = len(verdicts)
            per_value[i] = slot[j]
    if not verdicts:
        return verdicts, None
    return verdicts, per_value[codes]


def _mixes_flags_and_numbers(uniques: np.ndarray, values: pd.Series) -> bool:
    """True when a column holds both flags and numbers: factorize may have merged them.

    ``False == 0`` and ``True == 1`` as keys, so ``[0, False]`` factorizes to the single
    unique ``0`` and the flag would take the number's verdict (or the other way round).
    The uniques cannot show it, so the cells are looked at — only in object columns with
    a flag or a number among their uniques (never in a column of text).
    """
    if uniques.dtype != object or not any(
        isinstance(u, bool | float | int | np.number) for u in uniques
    ):
        return False
    flags = numbers = False
    for v in values:
        if isinstance(v, bool | np.bool_):
            flags = True
        elif isinstance(v, int | float | np.number):
            numbers = True
        if flags and numbers:
            return True
    return False


def _id_column(ids: pd.Series) -> tuple[list[Verdict], np.ndarray | None]:
    """Judge customer ids; Arrow strings with Arrow kernels (nearly every id is distinct)."""
    if isinstance(ids.dtype, pd.ArrowDtype) and pa.types.is_string(ids.dtype.pyarrow_dtype):
        return _arrow_ids(pa.array(ids))
    if pd.api.types.is_integer_dtype(ids.dtype) and not pd.api.types.is_bool_dtype(ids.dtype):
        missing = ids.isna().to_numpy()
        return _masks([(missing, MISSING_ID)], len(ids))
    if pd.api.types.is_float_dtype(ids.dtype):
        array = ids.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(array)
        with np.errstate(invalid="ignore"):
            fractional = ~missing & (np.floor(array) != array)
        return _masks([(missing, MISSING_ID), (fractional, BAD_ID)], len(ids))
    values = ids.to_numpy(dtype=object).tolist()
    if ids_accepted(values):
        return [], None
    judged = [judge_id(v) for v in values]
    verdicts = [BAD_ID, CONTROL_ID, MISSING_ID]
    codes = np.array(
        [verdicts.index(j) + 1 if isinstance(j, Verdict) else 0 for j in judged], dtype=np.int16
    )
    return (verdicts, codes) if codes.any() else ([], None)


def _arrow_ids(ids: pa.Array) -> tuple[list[Verdict], np.ndarray | None]:
    missing = ids.is_null()
    blank = pc.or_(
        pc.greater(pc.utf8_length(ids), MAX_ID_CHARS),
        pc.match_substring_regex(ids, f"^{ID_BLANK}$"),
    )
    control = pc.match_substring_regex(ids, ID_CONTROL)
    checks = [
        (missing, MISSING_ID),
        (pc.fill_null(blank, False), BAD_ID),
        (pc.fill_null(control, False), CONTROL_ID),
    ]
    if not any(pc.any(mask).as_py() for mask, _ in checks):
        return [], None
    return _masks([(m.to_numpy(zero_copy_only=False), v) for m, v in checks], len(ids))


def _masks(
    checks: list[tuple[np.ndarray, Verdict]], n: int
) -> tuple[list[Verdict], np.ndarray | None]:
    """Return verdict codes from masks in priority order (a later mask never overrides)."""
    verdicts: list[Verdict] = []
    codes = None
    for mask, verdict in checks:
        if not mask.any():
            continue
        if codes is None:
            codes = np.zeros(n, dtype=np.int16)
        verdicts.append(verdict)
        codes[mask & (codes == 0)] = len(verdicts)
    return verdicts, codes


def _collect(
    problems: dict[int, list[Problem]],
    name: str,
    allowed: Any,
    values: pd.Series,
    verdicts: list[Verdict],
    codes: np.ndarray | None,
) -> None:
    """Add a Problem for each refused cell, with the value as sent."""
    if codes is None:
        return
    rows = np.flatnonzero(codes)
    sent = values.iloc[rows].to_numpy(dtype=object)
    for row, code, value in zip(rows.tolist(), codes[rows].tolist(), sent, strict=True):
        problem = Problem(name, verdicts[code - 1], _plain(value), allowed)
        problems.setdefault(row, []).append(problem)


def _plain(value: Any) -> Any:
    """Return a cell as a JSON-safe Python value (None for every missing marker)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value
