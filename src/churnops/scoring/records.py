"""Strict validation of JSON records against the contract, fused with their encoding.

The API must answer a bad record with *which field, what was sent and what is allowed*,
and it must do so in a few microseconds per record. Pydantic models built from the
contract would give generic messages and cost more than the model; the table validator in
:mod:`churnops.data.validation` is vectorised pandas, far too slow for one row. So this
module walks the contract once per record with dict lookups, checking and encoding in the
same pass, and produces exactly the row :class:`~churnops.features.FeatureEncoder` would
(a test holds the two to equality).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from churnops.data.contract import DataContract, label_key
from churnops.errors import ScoringInputError
from churnops.features.encoder import FeatureEncoder

_NUMERIC, _BOOLEAN, _CATEGORICAL = 0, 1, 2
MAX_SENT_CHARS = 120  # echo at most this much of a bad value back to the client
MAX_ID_CHARS = 200


def _sent(value: Any) -> Any:
    """Return a bad value as it may be echoed back: scalars as-is, long text cut."""
    if isinstance(value, str) and len(value) > MAX_SENT_CHARS:
        return value[:MAX_SENT_CHARS] + "…"
    if isinstance(value, dict | list):
        text = repr(value)
        return text if len(text) <= MAX_SENT_CHARS else text[:MAX_SENT_CHARS] + "…"
    return value


class RecordCodec:
    """Validate JSON-like customer records against a contract and encode them in one pass."""

    def __init__(self, contract: DataContract) -> None:
        encoder = FeatureEncoder(contract)
        self.contract = contract
        self.id_column = contract.id
        self.width = encoder.width
        self.feature_names = encoder.feature_names
        # Columns a client may send that the model ignores (the label, ignored columns).
        self.passive = {c.name for c in contract.columns if c.role in ("target", "ignored")}
        self.allowed_fields = sorted(
            ([contract.id] if contract.id else []) + list(contract.feature_names)
        )
        self.fields: list[tuple[Any, ...]] = []
        self.template = [0.0] * self.width
        for block, spec in zip(encoder.blocks, contract.features, strict=True):
            required = spec.missing_rate == 0.0
            if block.kind == "numeric":
                # Finite bounds even when the contract has none: a huge JSON integer must
                # fail the range check, not overflow when converted to float.
                lower = spec.lower if spec.lower is not None else -sys.float_info.max
                upper = spec.upper if spec.upper is not None else sys.float_info.max
                allowed = {"type": "number", "minimum": spec.lower, "maximum": spec.upper}
                self.fields.append(
                    (block.name, _NUMERIC, block.start, block.fill, required, lower, upper, allowed)
                )
                self.template[block.start] = block.fill
            elif block.kind == "boolean":
                true_key = next(k for k, v in (block.index or {}).items() if v == 1)
                keys = frozenset(block.index or {})
                allowed = list(spec.levels or [0, 1])
                self.fields.append(
                    (block.name, _BOOLEAN, block.start, true_key, required, keys, None, allowed)
                )
            else:
                index = dict(block.index or {})
                allowed = list(index)
                self.fields.append(
                    (
                        block.name,
                        _CATEGORICAL,
                        block.start,
                        index,
                        required,
                        spec.open_categories,
                        None,
                        allowed,
                    )
                )
        self.known = {f[0] for f in self.fields} | self.passive
        if self.id_column:
            self.known.add(self.id_column)

    def customer_id(self, record: Mapping[str, Any]) -> str | None:
        """Return the record's customer id as text (None when the contract has no id)."""
        if not self.id_column:
            return None
        value = record.get(self.id_column)
        return None if value is None else str(value)

    def encode(self, record: Any, index: int | None = None) -> list[float]:
        """Return the encoded row of one record, or raise ScoringInputError naming each problem.

        Args:
            record: one parsed JSON value; must be an object.
            index: the record's position in a batch, added to each problem when given.
        """
        if not isinstance(record, dict):
            self._fail(
                [_problem(None, record, "object", "a customer must be a JSON object")], index
            )
        row = self.template.copy()
        problems: list[dict[str, Any]] | None = None
        for name, kind, start, aux, required, aux2, aux3, allowed in self.fields:
            value = record.get(name)
            if value is None:
                if required:
                    problems = problems or []
                    problems.append(_problem(name, None, allowed, "required field is missing"))
                continue
            if kind == _NUMERIC:
                if type(value) is float or type(value) is int:
                    if aux2 <= value <= aux3:
                        row[start] = float(value)
                        continue
                    finite = type(value) is int or math.isfinite(value)
                    message = "number out of range" if finite else "number is not finite"
                else:
                    message = "expects a number"
            elif kind == _BOOLEAN:
                if isinstance(value, str | int | float):
                    key = label_key(value)
                    if key in aux2:
                        if key == aux:
                            row[start] = 1.0
                        continue
                message = "expects one of the allowed values"
            else:
                if isinstance(value, str):
                    offset = aux.get(value)
                    if offset is None:
                        offset = aux.get(value.strip())
                    if offset is not None:
                        row[start + offset] = 1.0
                        continue
                    if aux2:  # open-ended column: an unseen level encodes as all zeros
                        continue
                    message = "unknown category"
                else:
                    message = "expects a string (one of the allowed categories)"
            problems = problems or []
            problems.append(_problem(name, value, allowed, message))
        if self.id_column:
            problems = self._check_id(record, problems)
        unknown = record.keys() - self.known
        if unknown:
            problems = problems or []
            for name in sorted(unknown)[:10]:
                problems.append(_problem(name, record[name], self.allowed_fields, "unknown field"))
        if problems:
            self._fail(problems, index)
        return row

    def encode_many(self, records: Sequence[Any]) -> list[list[float]]:
        """Encode a batch; problems of every bad record are reported together, by index."""
        rows: list[list[float]] = []
        problems: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            try:
                rows.append(self.encode(record, i))
            except ScoringInputError as exc:
                problems.extend(exc.details["errors"])
                if len(problems) >= 50:
                    break
        if problems:
            self._fail(problems, None)
        return rows

    def _check_id(
        self, record: dict[str, Any], problems: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]] | None:
        value = record.get(self.id_column)  # type: ignore[arg-type]
        if (isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS) or (
            isinstance(value, int) and not isinstance(value, bool)
        ):
            return problems
        problems = problems or []
        message = "required field is missing" if value is None else "expects a non-empty string"
        problems.append(_problem(self.id_column, value, "string", message))
        return problems

    @staticmethod
    def _fail(problems: list[dict[str, Any]], index: int | None) -> None:
        if index is not None:
            for p in problems:
                p["index"] = index
        first = problems[0]
        where = f"customer {first['index']}: " if "index" in first else ""
        field = f"field {first['field']!r}: " if first["field"] else ""
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ScoringInputError(
            f"{where}{field}{first['message']}, sent {first['sent']!r}{more}.",
            {"errors": problems},
        )


def _problem(field: str | None, sent: Any, allowed: Any, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "sent": _sent(sent), "allowed": allowed}
