"""Request and response models. ``CustomerIn`` is built from the loaded model's contract.

The predict routes read the raw body and validate it with
:class:`churnops.scoring.RecordCodec` (field-level 422s in microseconds); these models
describe the same rules for the OpenAPI document, so ``/docs`` shows the contract's
fields, allowed categories, ranges and a ready example.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from churnops.data.contract import DataContract
from churnops.data.rules import ID_BLANK, MAX_ID_CHARS, NUMBER_TEXT

_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
# The id rule (churnops.data.rules.judge_id) as a JSON Schema pattern: no control
# characters and at least one character that is not the rule's blank.
ID_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{ID_BLANK[1:-2]}][^{_CONTROL}]*$"


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str
    variant: Literal["champion", "challenger"]


class Reason(BaseModel):
    """One reason: a contract column, its signed log-odds contribution (+ = towards churn)
    and the customer's value of it — the same three fields a batch run stores — and the
    sentence people read, as the CLI, the reports and the dashboard write it.
    """

    feature: str
    contribution: float
    value: str | int | float | bool | None = Field(
        description="The customer's value as scored: the number, a boolean's level as "
        "stored, the category (null: missing or an ignored unseen category)."
    )
    text: str = Field(
        description="The reason for people: feature, value and signed log-odds.",
        examples=["contract = Month-to-month (+0.96 log-odds)"],
    )


class PredictionOut(BaseModel):
    """The churn score of one customer."""

    customer_id: str | None
    probability: float = Field(ge=0.0, le=1.0)
    churn: bool = Field(description="probability >= the model's decision threshold")
    model: ModelRef
    reasons: list[Reason] | None = Field(None, description="With ?explain=true: the top 3.")


class PredictionsOut(BaseModel):
    """Scores of a batch, in request order."""

    predictions: list[PredictionOut]
    count: int


class FeatureSummary(BaseModel):
    """One contract feature as the API accepts it."""

    name: str
    kind: str
    required: bool
    categories: list[str] | None = None
    levels: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None


class ModelInfo(BaseModel):
    """The serving model: version, metrics, threshold, contract summary, when it loaded."""

    name: str
    version: str
    run_id: str
    family: str | None
    source: str
    threshold: float
    metrics: dict[str, float]
    loaded_at: str
    id_column: str | None
    features: list[FeatureSummary]
    challenger: dict[str, Any] | None
    canary_share: float
    shadow: bool


class ReloadOut(BaseModel):
    """The outcome of a reload."""

    old_version: str | None
    new_version: str
    challenger_version: str | None
    changed: bool


class ErrorOut(BaseModel):
    """Every error response: a type, a message for people, and details."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str
    request_id: str | None = None


def feature_summary(contract: DataContract) -> list[FeatureSummary]:
    """Summarise the contract's features for ``GET /v1/model``."""
    out = []
    for spec in contract.features:
        out.append(
            FeatureSummary(
                name=spec.name,
                kind=spec.kind,
                required=spec.policy.missing == "reject",
                categories=list(spec.categories or {}) if spec.kind == "categorical" else None,
                levels=list(spec.levels or []) if spec.kind == "boolean" else None,
                minimum=spec.lower if spec.kind == "numeric" else None,
                maximum=spec.upper if spec.kind == "numeric" else None,
            )
        )
    return out


def customer_model(contract: DataContract, example: dict[str, Any]) -> type[BaseModel]:
    """Build ``CustomerIn`` from a contract: one field per column, with its allowed values."""
    fields: dict[str, Any] = {}
    if contract.id:
        fields[_ident(contract.id, 0)] = (
            str,
            Field(
                alias=contract.id,
                max_length=MAX_ID_CHARS,
                pattern=ID_PATTERN,
                description="Customer id: non-blank text without control characters.",
            ),
        )
    for i, spec in enumerate(contract.features, start=1):
        # The schema documents the contract's column rules (churnops.data.rules), which
        # decide every request; it is not a second validator.
        required = spec.policy.missing == "reject"
        parse_text = spec.policy.text == "parse"
        default = ... if required else None
        # Blank text is a missing value to the rules: a required field's text must not be.
        text: Any = Annotated[str, Field(pattern=r"\S")] if required else str
        if spec.kind == "numeric":
            kind: Any = Annotated[float, Field(ge=spec.lower, le=spec.upper)]
            if parse_text:
                kind = kind | Annotated[str, Field(pattern=f"^\\s*{NUMBER_TEXT.pattern}\\s*$")]
        elif spec.kind == "boolean":
            kind = Literal[tuple(spec.levels or [0, 1])]  # type: ignore[misc]
            if parse_text:
                kind = kind | text
        elif spec.policy.unseen == "ignore":
            kind = text
        else:
            kind = Literal[tuple(spec.categories or {})]  # type: ignore[misc]
        if not required:
            kind = kind | None
        fields[_ident(spec.name, i)] = (
            kind,
            Field(default, alias=spec.name, examples=[example.get(spec.name)]),
        )
    return create_model(  # type: ignore[call-overload,no-any-return]
        "CustomerIn",
        __config__=ConfigDict(extra="ignore", json_schema_extra={"example": example}),
        **fields,
    )


def _ident(name: str, i: int) -> str:
    """Return a safe Python identifier for a column (the column name stays the alias)."""
    return f"f{i}_" + re.sub(r"\W", "_", name)
