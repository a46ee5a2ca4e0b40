"""One rule per column: what a value may be, what it encodes to, what is said when it may not.

Each feature column's :class:`~churnops.data.contract.ColumnPolicy` lives in the contract;
this module is the only code that applies it. Table validation, the encoder behind batch
scoring (pandas and Spark engines) and the pyfunc, and the API's record codec (one record
and column-wise batches) all ask a :class:`ColumnRule`, so one value gets one verdict, one
message and one encoded number everywhere (``tests/test_parity.py`` holds them together).

A rule judges one value at a time (:meth:`ColumnRule.judge`). Columns are judged once per
*distinct* value through the same function (a million rows hold a few hundred distinct
values); only numbers already stored as numbers take a numpy route, which applies the same
checks in the same order (missing, finite, range).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops.data.contract import BLANK_STRINGS, ColumnSpec, DataContract, label_key

TRUE_WORDS = frozenset({"1", "1.0", "yes", "true", "y", "t"})
FALSE_WORDS = frozenset({"0", "0.0", "no", "false", "n", "f"})
# Numbers written as text: plain ASCII decimals and exponents. Not ``float()``'s whole
# grammar ("1_000", "infinity", Arabic-Indic digits), which no other tool would read alike.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_ID_CHARS = 200
RECORD_MEMO = 1024  # accepted values remembered per column (ColumnRule.record_judge)
# Control characters break logs and some databases (PostgreSQL refuses NUL in text).
ID_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
# Whitespace left once control characters are excluded: an id of only these is blank.
ID_BLANK = "[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
_ID_CONTROL = re.compile(ID_CONTROL)
_ID_BLANK = re.compile(ID_BLANK)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a value was refused: a check name for machines and a message for people."""

    check: str
    message: str


MISSING = Verdict("missing_value", "required field is missing")
NOT_A_NUMBER = Verdict("non_numeric", "expects a number")
NOT_FINITE = Verdict("not_finite", "number is not finite")
UNSEEN = Verdict("unseen_category", "unknown category")
NOT_A_CATEGORY = Verdict("wrong_type", "expects text (one of the allowed categories)")
MISSING_ID = Verdict("missing_id", "required field is missing")
BAD_ID = Verdict("bad_id", f"expects a non-blank string of at most {MAX_ID_CHARS} characters")
CONTROL_ID = Verdict("bad_id", "must not contain control characters")


@dataclass(frozen=True, slots=True)
class Problem:
    """One refused value: which field, why, what was sent and what is allowed."""

    field: str | None
    verdict: Verdict
    sent: Any
    allowed: Any

    @property
    def reason(self) -> str:
        """Return the one-line text stored with a rejected batch row."""
        return f"{self.field}: {self.verdict.message}, sent {shown(self.sent)}"


def shown(value: Any, limit: int = 120) -> str:
    """Return a sent value as messages quote it: its repr (numpy scalars as Python's), cut."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[:limit] + "…"


def is_missing(value: Any) -> bool:
    """Return True for None, NaN and pandas' missing markers (not for blank text)."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


class ColumnRule:
    """The rule of one feature column, built from its spec and policy.

    :meth:`judge` returns the encoded value — a float for numbers and booleans (0/1), the
    matrix column of the level for categoricals (-1: no level) — or a :class:`Verdict`.
    """

    def __init__(self, spec: ColumnSpec, start: int) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.start = start
        self.policy = spec.policy
        self.reject_missing = spec.policy.missing == "reject"
        self.parse_text = spec.policy.text == "parse"
        if spec.kind == "numeric":
            self.width = 1
            self.fill: float | int = spec.median
            self.lower = -math.inf if spec.lower is None else float(spec.lower)
            self.upper = math.inf if spec.upper is None else float(spec.upper)
            self.clip = spec.policy.out_of_range == "clip"
            self.out_of_range = Verdict(
                "out_of_range",
                f"number outside the allowed range [{self.lower:g}, {self.upper:g}]",
            )
            self.allowed: Any = {"type": "number", "minimum": spec.lower, "maximum": spec.upper}
        elif spec.kind == "boolean":
            self.width = 1
            self.fill = 0.0
            false_level, true_level = spec.levels or [0, 1]
            self.levels = [false_level, true_level]
            self.level_texts = {str(false_level), str(true_level)}
            true_key, false_key = label_key(true_level), label_key(false_level)
            self.true_keys = {true_key} | (TRUE_WORDS if true_key in TRUE_WORDS else set())
            self.false_keys = {false_key} | (FALSE_WORDS if false_key in FALSE_WORDS else set())
            self.not_boolean = Verdict(
                "unknown_boolean", f"expects one of: {false_level}, {true_level}"
            )
            self.allowed = self.levels
        else:
            levels = list(spec.categories or {})
            self.width = len(levels)
            self.fill = -1
            self.index: Mapping[str, int] = {level: start + i for i, level in enumerate(levels)}
            self.ignore_unseen = spec.policy.unseen == "ignore"
            self.allowed = levels
        self.missing: Verdict | float | int = MISSING if self.reject_missing else self.fill

    @property
    def feature_names(self) -> list[str]:
        """Return the names of the matrix columns this rule writes."""
        if self.kind == "categorical":
            return [f"{self.name}={level}" for level in self.index]
        return [self.name]

    def judge(self, value: Any) -> Verdict | float | int:
        """Return the encoded value of ``value``, or the Verdict that refuses it."""
        if self.kind == "numeric":
            return self._number(value)
        if self.kind == "boolean":
            return self._boolean(value)
        return self._category(value)

    def record_judge(self) -> Callable[[Any], Verdict | float | int]:
        """Return :meth:`judge` for one record at a time, remembering accepted values.

        Tables are judged once per distinct value (``data/judged.py``); a stream of single
        records (the API) meets the same few values again and again, and judging a text or
        a flag costs strip, lower-case and look-ups (~1-2 µs, most of a request's encoding).
        The same function decides; its answer for an accepted JSON text, bool or integer
        is kept (one table per type, so ``True`` and ``1`` never share an entry), at most
        ``RECORD_MEMO`` per column, refusals never (junk cannot fill it). Numbers are
        judged every time: their check is already a few comparisons.
        """
        if self.kind == "numeric":
            return self._number
        judge = self._boolean if self.kind == "boolean" else self._category
        memo: dict[type, dict[Any, float | int]] = {str: {}, bool: {}, int: {}}

        def judged(value: Any) -> Verdict | float | int:
            accepted = memo.get(type(value))
            if accepted is None:
                return judge(value)
            found = accepted.get(value)
            if found is not None:
                return found
            verdict = judge(value)
            if type(verdict) is not Verdict and len(accepted) < RECORD_MEMO:
                accepted[value] = verdict
            return verdict

        return judged

    def _number(self, value: Any) -> Verdict | float | int:
        kind = type(value)
        if kind is float or kind is int:  # the JSON fast path
            try:
                number = float(value)
            except OverflowError:  # an integer beyond any float
                return NOT_FINITE
            if number != number:
                return self.missing
        elif value is None:
            return self.missing
        elif isinstance(value, bool | np.bool_):
            return NOT_A_NUMBER
        elif isinstance(value, int | np.integer):
            try:
                number = float(value)
            except OverflowError:
                return NOT_FINITE
        elif isinstance(value, float | np.floating):
            number = float(value)
            if number != number:
                return self.missing
        elif isinstance(value, str):
            text = value.strip()
            if text.lower() in BLANK_STRINGS:
                return self.missing
            if not self.parse_text or NUMBER_TEXT.fullmatch(text) is None:
                return NOT_A_NUMBER
            number = float(text)
        elif is_missing(value):
            return self.missing
        else:
            return NOT_A_NUMBER
        if number - number != 0.0:  # inf (NaN was handled above)
            return NOT_FINITE
        if number < self.lower or number > self.upper:
            if not self.clip:
                return self.out_of_range
            return min(max(number, self.lower), self.upper)
        return number

    def _boolean(self, value: Any) -> Verdict | float | int:
        if is_missing(value):
            return self.missing
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in BLANK_STRINGS:
                return self.missing
            if not self.parse_text and text not in self.level_texts:
                return self.not_boolean
        elif not isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
            return self.not_boolean
        key = label_key(value)
        if key in self.true_keys:
            return 1.0
        if key in self.false_keys:
            return 0.0
        return self.not_boolean

    def _category(self, value: Any) -> Verdict | float | int:
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in BLANK_STRINGS:
                return self.missing
        elif is_missing(value):
            return self.missing
        elif isinstance(value, bool | np.bool_):
            return NOT_A_CATEGORY
        elif isinstance(value, int | np.integer):
            text = str(int(value))
        elif isinstance(value, float | np.floating):
            text = str(int(value)) if float(value).is_integer() else repr(float(value))
        else:
            return NOT_A_CATEGORY
        column = self.index.get(text)
        if column is not None:
            return column
        return -1 if self.ignore_unseen else UNSEEN


def judge_id(value: Any) -> Verdict | str:
    """Return a customer id as text, or the Verdict that refuses it."""
    if isinstance(value, str):
        if len(value) > MAX_ID_CHARS or _ID_BLANK.fullmatch(value):
            return BAD_ID
        if _ID_CONTROL.search(value):
            return CONTROL_ID
        return value
    if is_missing(value):
        return MISSING_ID
    if isinstance(value, bool | np.bool_):
        return BAD_ID
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return BAD_ID


def ids_accepted(values: Sequence[Any]) -> bool:
    """True when :func:`judge_id` accepts every value as it is (non-blank strings), else False.

    Why: the batch API and batch scoring judge thousands of ids at a time, and two regular
    expressions per id cost ~1.6 µs each: a third of a 1,000-customer request. Strings are
    checked together instead: one length pass, one blank pass (``str.strip``: every
    character of ``ID_BLANK`` is whitespace to Python, so an id that strips to something
    is not blank), and one control-character search over the ids joined by a space (not a
    control character). False means "judge one by one": some value is not a string, or
    some id would be refused, with its own verdict.
    """
    return (
        bool(values)
        and all(type(v) is str for v in values)
        and max(map(len, values)) <= MAX_ID_CHARS
        and all(map(str.strip, values))
        and _ID_CONTROL.search(" ".join(values)) is None
    )


def column_rules(contract: DataContract) -> list[ColumnRule]:
    """Return the rules of the contract's feature columns, in matrix order."""
    rules = []
    start = 0
    for spec in contract.features:
        rule = ColumnRule(spec, start)
        rules.append(rule)
        start += rule.width
    return rules
