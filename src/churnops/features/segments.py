"""Customer segments stored with every score as one integer, filterable in SQL.

The retention team slices the risk list by the contract's low-cardinality columns
("month-to-month customers with fibre"). Storing each segment column as text would
multiply the bytes a batch run writes; instead a run stores one mixed-radix integer per
customer: segment column ``i`` with ``k`` levels is the digit ``(segment / stride_i) %
(k + 1)``, where digit 0 means no level (missing, or an unseen category the policy
ignores) and digit ``j`` the ``j``-th level. The run records its :class:`SegmentKey`
(columns and levels, as JSON on ``scoring_runs.segments``), so a stored code reads back
the same way after the champion changes, and a filter is integer arithmetic that works
on SQLite and PostgreSQL alike.

Segment columns are derived from the champion's contract, never named in code: its
categorical (at most :data:`MAX_LEVELS` levels) and boolean feature columns in contract
order, at most :data:`MAX_COLUMNS` (a filter each in the dashboard; 16 columns of 12
levels take 13**16 < 2**62 codes, so any such set fits one signed 64-bit integer),
unless ``score_segment_columns`` names them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from churnops.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import sqlalchemy as sa

    from churnops.data.contract import ColumnSpec, DataContract
    from churnops.data.judged import JudgedFrame
    from churnops.data.rules import ColumnRule

MAX_LEVELS = 12
MAX_COLUMNS = 16
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class Segment:
    """One segment column and its levels as displayed (digit ``j + 1`` is ``levels[j]``).

    ``missing``: whether the column's policy lets a row have no level (digit 0), so the
    dashboard offers ``(missing)`` only where it can occur.
    """

    column: str
    levels: tuple[str, ...]
    missing: bool = False

    @property
    def radix(self) -> int:
        """Return how many digits the column takes: its levels plus 0 for none."""
        return len(self.levels) + 1


@dataclass(frozen=True)
class SegmentKey:
    """How a run's ``segment`` integers read: its segment columns, and why others were left out.

    ``warnings`` say which configured columns were skipped; they travel with the key so
    the dashboard can show them next to the run they concern.
    """

    segments: tuple[Segment, ...] = ()
    warnings: tuple[str, ...] = ()
    _decoded: dict[int, dict[str, str]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @property
    def columns(self) -> list[str]:
        """Return the segment column names, in digit order."""
        return [s.column for s in self.segments]

    @cached_property
    def strides(self) -> list[int]:
        """Return each column's place value in the mixed-radix code."""
        strides, place = [], 1
        for segment in self.segments:
            strides.append(place)
            place *= segment.radix
        return strides

    def levels(self) -> dict[str, list[str]]:
        """Return each column's levels as a filter may name them (``(missing)`` included)."""
        return {
            s.column: [*s.levels, *([MISSING_LEVEL] if s.missing else [])] for s in self.segments
        }

    def warn(self, warning: str) -> SegmentKey:
        """Return the key with one more warning about the run's columns."""
        return SegmentKey(self.segments, (*self.warnings, warning))

    def to_json(self) -> str:
        """Return the key as stored on ``scoring_runs.segments``."""
        columns = [
            {"column": s.column, "levels": list(s.levels), "missing": s.missing}
            for s in self.segments
        ]
        return json.dumps({"columns": columns, "warnings": list(self.warnings)})

    @classmethod
    def from_json(cls, text: str | None) -> SegmentKey:
        """Read a stored key; a run stored before segments existed has none (NULL)."""
        if not text:
            return cls()
        data = json.loads(text)
        segments = tuple(
            Segment(c["column"], tuple(c["levels"]), c["missing"]) for c in data["columns"]
        )
        return cls(segments, tuple(data.get("warnings", ())))

    def decode(self, code: int | None) -> dict[str, str]:
        """Return ``{column: level}`` of a stored code (``{}`` for a run without segments).

        Codes repeat across a run's rows (a few hundred distinct ones per million rows),
        so each is decoded once.
        """
        if code is None or not self.segments:
            return {}
        decoded = self._decoded.get(code)
        if decoded is None:
            decoded = {}
            for segment, stride in zip(self.segments, self.strides, strict=True):
                digit = code // stride % segment.radix
                decoded[segment.column] = segment.levels[digit - 1] if digit else MISSING_LEVEL
            self._decoded[code] = decoded
        return decoded

    def digit(self, column: str, level: str) -> tuple[int, int, int]:
        """Return ``(stride, radix, digit)`` of ``column = level``, or a DataError naming both."""
        for segment, stride in zip(self.segments, self.strides, strict=True):
            if segment.column != column:
                continue
            if level == MISSING_LEVEL:
                return stride, segment.radix, 0
            if level not in segment.levels:
                raise DataError(
                    f"Segment {column!r} has no level {level!r}; its levels: "
                    f"{', '.join(self.levels()[column])}.",
                    {"segment": column, "level": level},
                )
            return stride, segment.radix, segment.levels.index(level) + 1
        raise DataError(
            f"{column!r} is not a segment of this run; its segments: "
            f"{', '.join(self.columns) or 'none (scored before segments were stored)'}.",
            {"segment": column},
        )

    def condition(self, code: sa.ColumnElement[Any], wanted: Mapping[str, str]) -> list[Any]:
        """Return SQL conditions on the integer ``code`` column for ``{column: level}``.

        Plain integer arithmetic (``/`` of two integers truncates on both SQLite and
        PostgreSQL, and codes are never negative), so no backend-specific function.
        A run stored before segments existed has NULL codes, which match no condition.
        """
        out = []
        for column, level in wanted.items():
            stride, radix, digit = self.digit(column, level)
            place = code if stride == 1 else code.op("/")(stride)
            out.append(place.op("%")(radix) == digit)
        return out


def segment_key(
    contract: DataContract,
    configured: Sequence[str] | None = None,
    setting: str = "score_segment_columns",
) -> SegmentKey:
    """Return the segments of a run scored (or monitored) with ``contract``.

    ``configured`` None derives them (the first :data:`MAX_COLUMNS` usable columns in
    contract order); otherwise each name must be a usable column, and the others are
    skipped with a warning (naming ``setting``) rather than failing the run: segments
    only slice the list.
    """
    usable = {spec.name: spec for spec in contract.features if _usable(spec)}
    warnings: list[str] = []
    if configured is None:
        names = list(usable)[:MAX_COLUMNS]
    else:
        features = set(contract.feature_names)
        names = []
        for name in dict.fromkeys(configured):  # a repeated name counts once
            if name in usable:
                names.append(name)
            elif name in features:
                warnings.append(
                    f"{setting}: {name!r} is not a categorical (at most "
                    f"{MAX_LEVELS} levels) or boolean feature of the champion's contract; "
                    "skipped."
                )
            else:
                warnings.append(
                    f"{setting}: {name!r} is not a feature of the champion's contract; skipped."
                )
        if len(names) > MAX_COLUMNS:
            warnings.append(
                f"{setting}: at most {MAX_COLUMNS} segment columns; skipped "
                f"{', '.join(map(repr, names[MAX_COLUMNS:]))}."
            )
            names = names[:MAX_COLUMNS]
    segments = tuple(_segment(usable[name]) for name in names)
    return SegmentKey(segments, tuple(warnings))


def _usable(spec: ColumnSpec) -> bool:
    if spec.kind == "boolean":
        return True
    return (
        spec.kind == "categorical"
        and not spec.open_categories
        and 0 < len(spec.categories or {}) <= MAX_LEVELS
    )


def _segment(spec: ColumnSpec) -> Segment:
    """Levels in the encoder's order: one-hot columns for categories, [false, true] flags.

    A boolean always has a level (a missing one is refused or imputed as false); a
    category has none when the policy imputes a missing one or ignores an unseen one.
    """
    if spec.kind == "boolean":
        return Segment(spec.name, tuple(str(level) for level in (spec.levels or [0, 1])))
    none = spec.policy.missing == "impute" or spec.policy.unseen == "ignore"
    return Segment(spec.name, tuple(spec.categories or {}), none)


def segment_codes(
    key: SegmentKey,
    judged: JudgedFrame,
    rules: Sequence[ColumnRule],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Return each judged row's segment code (only ``rows``, when given), vectorised.

    Read from what the rules decided, so a segment is the level the model saw: a
    category's one-hot column (``hot``: -1 for none) or a boolean's 0/1 flag (a missing
    boolean the policy imputes counts as false, as it does for the model).
    """
    import numpy as np  # here, not at the top: readers of stored codes need no numpy

    hot_rules = [r for r in rules if r.kind == "categorical"]
    dense_rules = [r for r in rules if r.kind != "categorical"]
    n = judged.rows if rows is None else len(rows)
    codes = np.zeros(n, dtype=np.int64)
    for segment, stride in zip(key.segments, key.strides, strict=True):
        rule = next(r for r in rules if r.name == segment.column)
        if rule.kind == "categorical":
            hot = judged.hot[hot_rules.index(rule)]
            hot = hot if rows is None else hot[rows]
            digits = np.where(hot >= 0, hot - (rule.start - 1), 0)
        else:
            flags = judged.dense[dense_rules.index(rule)]
            digits = (flags if rows is None else flags[rows]).astype(np.int64) + 1
        codes += digits.astype(np.int64) * stride
    return codes
