"""Reasons as sentences a retention team reads."""

from __future__ import annotations

import pytest

from churnops.batch.report import reason_sentence, reason_text, to_csv


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (
            {"feature": "contract", "contribution": 0.5, "value": "Month-to-month"},
            "contract = Month-to-month raises risk",
        ),
        ({"feature": "tenure", "contribution": -0.2, "value": 2}, "tenure = 2 lowers risk"),
        ({"feature": "tenure", "contribution": -0.2, "value": 2.0}, "tenure = 2 lowers risk"),
        (
            {"feature": "charges", "contribution": 0.1, "value": 65.349},
            "charges = 65.3 raises risk",
        ),
        (
            {"feature": "charges", "contribution": 0.1, "value": 1234.5},
            "charges = 1230 raises risk",
        ),
        (
            {"feature": "rate", "contribution": 0.1, "value": 0.000123456},
            "rate = 0.000123 raises risk",
        ),
        ({"feature": "partner", "contribution": 0.3, "value": "No"}, "partner = No raises risk"),
        ({"feature": "senior", "contribution": 0.3, "value": True}, "senior = True raises risk"),
        (
            {"feature": "contract", "contribution": 0.4, "value": None},
            "contract (missing) raises risk",
        ),
        ({"feature": "tenure", "contribution": 0.8}, "tenure raises risk"),  # stored before values
        ({"feature": "tenure", "contribution": 0.0, "value": 5}, "tenure = 5 does not change risk"),
    ],
)
def test_a_reason_reads_as_a_sentence(reason: dict, sentence: str) -> None:
    """The value (compact numbers, levels as stored, missing said) and the direction."""
    assert reason_sentence(reason) == sentence


def test_reasons_join_and_the_csv_report_uses_them() -> None:
    """A row's reasons are joined by '; ' in the report's CSV."""
    reasons = [
        {"feature": "contract", "contribution": 0.5, "value": "Month-to-month"},
        {"feature": "tenure", "contribution": -0.1, "value": 30},
    ]
    text = "contract = Month-to-month raises risk; tenure = 30 lowers risk"
    assert reason_text(reasons) == text
    assert reason_text([]) == ""
    row = {"risk_rank": 1, "customer_id": "C1", "score": 0.9, "reasons": reasons}
    report = {"customers": [{**row, "model_version": "3"}]}
    assert to_csv(report).splitlines()[1] == f"1,C1,0.9000,{text},3"
