"""The campaign planner: hand-computed plans, limits, and one formula shared with training."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.campaign import ProfitModel, cumulative_profit, plan_campaign
from churnops.training.threshold import profit_curve

ECONOMICS = ProfitModel(offer_cost=10.0, acceptance_rate=0.5, customer_value=100.0)
SCORES = np.array([0.9, 0.6, 0.3, 0.1])  # expected saves 45, 30, 15, 5 against a 10 offer


def test_cumulative_profit_by_hand() -> None:
    """Contacting the top n: n * cost out, outcome * acceptance * value in."""
    profit = cumulative_profit(SCORES, None, ECONOMICS)
    assert profit == pytest.approx([0.0, 35.0, 55.0, 60.0, 55.0])
    valued = cumulative_profit(np.array([1, 0, 1]), np.array([40.0, 1000.0, 100.0]), ECONOMICS)
    assert valued == pytest.approx([0.0, 10.0, 0.0, 40.0])


def test_plan_by_hand() -> None:
    """The optimum stops before the first customer who costs more than they save."""
    plan = plan_campaign(SCORES, None, ECONOMICS)
    assert plan.contacts == 3
    assert plan.threshold == pytest.approx(0.3)
    assert plan.cost == pytest.approx(30.0)
    assert plan.saved_revenue == pytest.approx(90.0)
    assert plan.profit == pytest.approx(60.0)
    assert plan.limit == 4
    assert list(plan.curve_contacts) == [0, 1, 2, 3, 4]
    assert plan.curve_profit == pytest.approx([0.0, 35.0, 55.0, 60.0, 55.0])


def test_a_missing_value_saves_nothing() -> None:
    """NaN (no value recorded) counts as 0, as training fills a missing value."""
    values = np.array([100.0, np.nan, 100.0, 100.0])
    profit = cumulative_profit(SCORES, values, ECONOMICS)
    assert profit == pytest.approx([0.0, 35.0, 25.0, 30.0, 25.0])
    assert plan_campaign(SCORES, values, ECONOMICS).contacts == 1


def test_per_customer_values_change_the_plan() -> None:
    """A valuable customer further down the list is worth reaching."""
    values = np.array([100.0, 10.0, 10.0, 1000.0])
    plan = plan_campaign(SCORES, values, ECONOMICS)
    # saves 45, 3, 1.5, 50 against 10 each: 35, 28, 19.5, 59.5
    assert plan.contacts == 4
    assert plan.profit == pytest.approx(59.5)


@pytest.mark.parametrize(
    ("limits", "contacts", "limit"),
    [
        ({"budget": 25.0}, 2, 2),
        ({"budget": 30.0}, 3, 3),  # exactly three offers (no float floor slip)
        ({"max_calls": 1}, 1, 1),
        ({"budget": 1000.0, "max_calls": 2}, 2, 2),
        ({"budget": 0.0}, 0, 0),
        ({"budget": 5.0}, 0, 0),
    ],
)
def test_budget_and_call_limits_are_respected(
    limits: dict[str, float], contacts: int, limit: int
) -> None:
    """Never more contacts than the budget pays for or the team can call."""
    plan = plan_campaign(SCORES, None, ECONOMICS, **limits)
    assert plan.contacts == contacts
    assert plan.limit == limit
    assert plan.cost <= limits.get("budget", np.inf)
    assert limit in plan.curve_contacts


def test_no_profitable_contact_means_nobody_is_contacted() -> None:
    """When every offer costs more than it is expected to save, the plan is empty."""
    for cost in (45.0, 100.0):  # break-even on the riskiest customer, then a clear loss
        plan = plan_campaign(SCORES, None, ProfitModel(cost, 0.5, 100.0))
        assert plan.contacts == 0
        assert plan.threshold is None
        assert plan.profit == 0.0
        assert plan.cost == 0.0
    empty = plan_campaign(np.array([]), None, ECONOMICS)
    assert (empty.contacts, empty.limit, list(empty.curve_contacts)) == (0, 0, [0])


def test_plan_profit_equals_trainings_formula_with_probabilities_as_outcomes() -> None:
    """Training's profit curve read with outcome = probability is the plan's profit."""
    rng = np.random.default_rng(3)
    p = np.sort(rng.beta(2, 5, 2000))[::-1]
    values = rng.gamma(2.0, 300.0, len(p))
    economics = ProfitModel(offer_cost=25.0, acceptance_rate=0.3, customer_value=500.0)
    for v in (None, values):
        plan = plan_campaign(p, v, economics, budget=10_000.0)
        assert plan.threshold is not None
        trained = profit_curve(p, p, np.array([plan.threshold]), economics, v)
        assert trained[0] == pytest.approx(plan.profit, rel=1e-9)
        curve = cumulative_profit(p, v, economics)
        assert plan.profit == pytest.approx(curve[: plan.limit + 1].max())


def test_the_curve_is_downsampled_but_keeps_its_marks() -> None:
    """At most 500 points, always 0, the chosen cut and the limit, in order."""
    p = np.linspace(0.99, 0.01, 100_003)
    plan = plan_campaign(p, None, ECONOMICS, max_calls=77_777)
    assert len(plan.curve_contacts) <= 500
    assert {0, plan.contacts, plan.limit} <= set(plan.curve_contacts.tolist())
    assert np.all(np.diff(plan.curve_contacts) > 0)
    full = cumulative_profit(p, None, ECONOMICS)
    assert plan.curve_profit == pytest.approx(full[plan.curve_contacts])


def test_unsorted_scores_and_mismatched_values_are_refused() -> None:
    """The plan reads the list in risk order; anything else is a caller's bug."""
    with pytest.raises(ValueError, match="sorted descending"):
        plan_campaign(np.array([0.1, 0.9]), None, ECONOMICS)
    with pytest.raises(ValueError, match="values"):
        plan_campaign(SCORES, np.ones(3), ECONOMICS)
