"""Reasons and scores as people read them: the CLI, the reports and the API say them alike."""

from __future__ import annotations

import pytest

from churnops.batch.report import reason_sentence, reason_text, score_text, to_csv


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (
            {"feature": "contract", "contribution": 0.9612, "value": "Month-to-month"},
            "contract = Month-to-month (+0.96 log-odds)",
        ),
        ({"feature": "tenure", "contribution": -0.2, "value": 2}, "tenure = 2 (-0.20 log-odds)"),
        ({"feature": "tenure", "contribution": -0.2, "value": 2.0}, "tenure = 2 (-0.20 log-odds)"),
        (
            {"feature": "charges", "contribution": 0.1, "value": 65.349},
            "charges = 65.3 (+0.10 log-odds)",
        ),
        (
            {"feature": "charges", "contribution": 0.1, "value": 1234.5},
            "charges = 1230 (+0.10 log-odds)",
        ),
        (
            {"feature": "rate", "contribution": 0.1, "value": 0.000123456},
            "rate = 0.000123 (+0.10 log-odds)",
        ),
        (
            {"feature": "partner", "contribution": 0.3, "value": "No"},
            "partner = No (+0.30 log-odds)",
        ),
        (
            {"feature": "senior", "contribution": 1.25, "value": True},
            "senior = True (+1.25 log-odds)",
        ),
        (
            {"feature": "contract", "contribution": 0.4, "value": None},
            "contract is missing (+0.40 log-odds)",
        ),
        ({"feature": "tenure", "contribution": 0.8}, "tenure (+0.80 log-odds)"),  # stored before
        ({"feature": "tenure", "contribution": 0.0, "value": 5}, "tenure = 5 (+0.00 log-odds)"),
    ],
)
def test_a_reason_reads_as_feature_value_and_signed_log_odds(reason: dict, sentence: str) -> None:
    """The value (compact numbers, levels as stored, missing said) and the signed push."""
    assert reason_sentence(reason) == sentence


@pytest.mark.parametrize(
    ("probability", "text"),
    [
        (0.42131, "0.4213"),
        (0.5, "0.5000"),
        (0.95123, "0.95123"),
        (0.99987, "0.99987"),
        (0.99991, "0.99991"),
        (0.9998712, "0.9998712"),
        (0.0001234, "0.0001234"),
        (1.0, "1.0000"),
        (0.0, "0.0000"),
    ],
)
def test_a_score_shows_four_significant_digits_of_its_distance_to_0_or_1(
    probability: float, text: str
) -> None:
    """Scores near 1 (the top of every high-risk list) keep the digits that rank them."""
    assert score_text(probability) == text


def test_neighbouring_top_scores_print_apart() -> None:
    """Today's riskiest customers are 1 - 1e-4 apart: no two of them print alike."""
    scores = [1 - k * 1e-5 for k in range(1, 200)]
    assert len({score_text(p) for p in scores}) == len(scores)


def test_reasons_join_and_the_csv_report_uses_them() -> None:
    """A row's reasons are joined by '; ' and its score keeps its digits in the CSV."""
    reasons = [
        {"feature": "contract", "contribution": 0.5, "value": "Month-to-month"},
        {"feature": "tenure", "contribution": -0.1, "value": 30},
    ]
    text = "contract = Month-to-month (+0.50 log-odds); tenure = 30 (-0.10 log-odds)"
    assert reason_text(reasons) == text
    assert reason_text([]) == ""
    row = {"risk_rank": 1, "customer_id": "C1", "score": 0.99987, "reasons": reasons}
    report = {"customers": [{**row, "model_version": "3"}]}
    assert to_csv(report).splitlines()[1] == f"1,C1,0.99987,{text},3"
