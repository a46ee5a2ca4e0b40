"""Campaign economics: one profit formula for choosing the threshold and planning a campaign.

Training picks the model's threshold by the profit the campaign *would have made* on
labelled customers; the retention team plans a campaign by the profit it *expects* from
the scores. Both contact the riskiest customers first and both use
:func:`cumulative_profit` — only the outcome differs (the realised label, or the churn
probability) — so the threshold the model ships with and the plan the dashboard shows
can never disagree about what a contact costs or what a save is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CURVE_POINTS = 500


@dataclass(frozen=True)
class ProfitModel:
    """Campaign economics: an offer costs ``offer_cost``; a churner who accepts is saved.

    Expected profit of contacting a customer with churn probability p and value v is
    ``p * acceptance_rate * v - offer_cost``; over a labelled set the realised profit of a
    threshold is the saved value of true churners above it minus the cost of every contact.
    """

    offer_cost: float
    acceptance_rate: float
    customer_value: float = 0.0


@dataclass(frozen=True)
class CampaignPlan:
    """The profit-optimal number of contacts within the limits, and the curve behind it."""

    contacts: int  # how many of the riskiest customers to contact
    threshold: float | None  # score of the last contacted customer (None: nobody)
    cost: float  # contacts * offer_cost
    saved_revenue: float  # expected saved value
    profit: float  # saved_revenue - cost
    limit: int  # the most contacts the budget / calls allow
    curve_contacts: np.ndarray  # x of the profit curve (<= 500 points: 0, chosen, limit)
    curve_profit: np.ndarray


def cumulative_profit(
    outcomes: np.ndarray, values: np.ndarray | None, economics: ProfitModel
) -> np.ndarray:
    """Return the profit of contacting the first n customers, for n = 0 .. len(outcomes).

    Customers are in contact order (riskiest first). Contacting the top n costs
    ``n * offer_cost`` and saves ``sum(outcome_i * acceptance_rate * value_i)`` over them;
    ``outcome`` is the realised label (what a threshold would have earned) or the churn
    probability (what a campaign is expected to earn). ``values`` None means every
    customer is worth ``economics.customer_value``; a missing value (NaN) saves nothing,
    as training counts a missing value-column entry.
    """
    outcomes = np.asarray(outcomes, dtype=float)
    if values is None:
        saved = outcomes * (economics.acceptance_rate * economics.customer_value)
    else:
        v = np.asarray(values, dtype=float)
        saved = outcomes * np.where(np.isnan(v), 0.0, v) * economics.acceptance_rate
    profit = np.empty(len(outcomes) + 1)
    profit[0] = 0.0
    np.cumsum(saved, out=profit[1:])
    profit -= np.arange(len(outcomes) + 1) * economics.offer_cost
    return profit


def _contact_limit(
    customers: int, offer_cost: float, budget: float | None = None, max_calls: int | None = None
) -> int:
    """Return how many customers the budget and the call capacity allow (at most all)."""
    limit = customers
    if budget is not None and offer_cost > 0:
        limit = min(limit, int(np.floor(max(budget, 0.0) / offer_cost + 1e-9)))
    if max_calls is not None:
        limit = min(limit, max(int(max_calls), 0))
    return limit


def plan_campaign(
    scores: np.ndarray,
    values: np.ndarray | None,
    economics: ProfitModel,
    *,
    budget: float | None = None,
    max_calls: int | None = None,
) -> CampaignPlan:
    """Choose how many of the riskiest customers to contact for the most expected profit.

    ``scores`` are calibrated churn probabilities sorted descending (the risk list's
    order); ``values`` the customers' values in the same order (None: the constant
    ``economics.customer_value``). The plan never contacts more than ``budget /
    offer_cost`` or ``max_calls`` customers, and contacts nobody when no prefix of the
    list pays for itself. One cumulative sum: a million customers plan in milliseconds.
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) > 1 and np.any(scores[1:] > scores[:-1]):
        raise ValueError("scores must be sorted descending (the riskiest customer first)")
    if values is not None and len(values) != len(scores):
        raise ValueError(f"{len(values)} values for {len(scores)} scores")
    profit = cumulative_profit(scores, values, economics)
    limit = _contact_limit(len(scores), economics.offer_cost, budget, max_calls)
    contacts = int(np.argmax(profit[: limit + 1]))  # the first maximum: fewest contacts
    cost = contacts * economics.offer_cost
    x = _curve_points(len(scores), contacts, limit)
    return CampaignPlan(
        contacts=contacts,
        threshold=float(scores[contacts - 1]) if contacts else None,
        cost=float(cost),
        saved_revenue=float(profit[contacts] + cost),
        profit=float(profit[contacts]),
        limit=limit,
        curve_contacts=x,
        curve_profit=profit[x],
    )


def _curve_points(customers: int, contacts: int, limit: int) -> np.ndarray:
    """Return at most ``CURVE_POINTS`` x values spread over 0..customers, keeping the marks."""
    spread = np.linspace(0, customers, min(customers + 1, CURVE_POINTS - 2))
    marks = np.array([0, contacts, limit, customers])
    return np.unique(np.concatenate([np.round(spread).astype(np.int64), marks]))
